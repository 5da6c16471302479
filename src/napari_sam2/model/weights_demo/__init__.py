"""Package data: the demo model's weights (`demo.pt`), written by scripts/train_demo.py."""
