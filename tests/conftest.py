import sys
from pathlib import Path

# tests/reference.py is a plain helper module, importable as `reference` from every test
sys.path.insert(0, str(Path(__file__).parent))
