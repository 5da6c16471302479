"""The widget's keyboard shortcuts, in one place for the panels, the viewer and the docs."""

SHORTCUTS = {
    "toggle_sign": "N",  # on the clicks layer
    "next_candidate": "C",  # on the clicks layer
    "forward": "Shift-F",
    "backward": "Shift-B",
    "both": "Shift-P",
    "new_object": "Shift-N",
    "cancel": "Shift-C",
}
