"""GEFF export: nodes at each object's centroid per frame with its label, edges along tracks,
across gaps and from mothers to daughters; valid for the geff package and read back."""

import pytest

from ctc_helpers import dividing_volume
from napari_sam2.errors import SAM2Error
from napari_sam2.io.geff import tracking_graph, write_geff

geff = pytest.importorskip("geff")  # the optional extra; the testing extra installs it


def _edges_by_label(graph):
    def key(n):
        return graph.nodes[n]["seg_id"], int(graph.nodes[n]["t"])

    return {(key(a), key(b)) for a, b in graph.edges}


def test_graph_nodes_and_edges_follow_tracks_divisions_and_gaps():
    graph = tracking_graph(dividing_volume(), {5: 1, 6: 1})
    assert graph.number_of_nodes() == 3 + 3 + 3 + 4
    first = next(n for n, d in graph.nodes(data=True) if d["seg_id"] == 1 and d["t"] == 0)
    assert graph.nodes[first]["y"] == pytest.approx(3.5) and graph.nodes[first]["x"] == 3.5
    edges = _edges_by_label(graph)
    assert ((1, 2), (5, 3)) in edges and ((1, 2), (6, 3)) in edges  # the division
    assert ((2, 1), (2, 4)) in edges  # across the gap
    assert ((1, 0), (1, 1)) in edges and ((5, 4), (5, 5)) in edges
    assert len(edges) == (2 + 2 + 2 + 1 + 1) + 1 + 2  # along tracks, the gap, the division
    # the run after the gap is its own track, as in the CTC export
    after_gap = {d["track_id"] for d in graph.nodes.values() if d["seg_id"] == 2 and d["t"] > 3}
    assert after_gap == {7}


def test_written_geff_is_valid_and_reads_back(tmp_path):
    labels, lineage = dividing_volume(), {5: 1, 6: 1}
    count = write_geff(
        tmp_path / "tracks.geff", labels, lineage, spacing={"Y": 0.5, "X": 0.5}, unit="micron"
    )
    geff.validate_structure(str(tmp_path / "tracks.geff"))
    graph, metadata = geff.read(str(tmp_path / "tracks.geff"))
    assert graph.number_of_nodes() == count == 13
    assert _edges_by_label(graph) == _edges_by_label(tracking_graph(labels, lineage))
    assert [a.name for a in metadata.axes] == ["t", "y", "x"]
    assert [a.type for a in metadata.axes] == ["time", "space", "space"]
    assert metadata.axes[1].unit == "micron" and metadata.axes[1].scale == 0.5
    node = next(n for n, d in graph.nodes(data=True) if d["seg_id"] == 6 and d["t"] == 3)
    assert (graph.nodes[node]["y"], graph.nodes[node]["x"]) == (9.5, 9.5)


def test_a_z_stack_has_z_positions(tmp_path):
    labels = dividing_volume()
    write_geff(tmp_path / "z.geff", labels, axes="ZYX")
    graph, metadata = geff.read(str(tmp_path / "z.geff"))
    assert [a.name for a in metadata.axes] == ["z", "y", "x"]
    assert {d["z"] for d in graph.nodes.values()} == set(range(6))


def test_existing_output_is_refused_unless_overwrite_and_never_a_foreign_folder(tmp_path):
    labels = dividing_volume()
    write_geff(tmp_path / "a.geff", labels)
    with pytest.raises(SAM2Error, match="exists"):
        write_geff(tmp_path / "a.geff", labels[:, ::-1].copy())
    write_geff(tmp_path / "a.geff", labels[:3], overwrite=True)
    graph, _ = geff.read(str(tmp_path / "a.geff"))
    assert graph.number_of_nodes() == 3 + 2
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(SAM2Error, match="not a GEFF"):
        write_geff(tmp_path / "notes", labels, overwrite=True)
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    with pytest.raises(SAM2Error, match="TYX or ZYX"):
        tracking_graph(labels, axes="YXT")
