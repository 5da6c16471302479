"""Everything that imports Qt or napari: the dock widget and its layer handling."""
