"""What kgrec saves and reads back: checkpoints, exports, output folders and run ids, refused with an error that
names the problem (never a traceback, never after the work is done)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch_geometric.data import HeteroData

from kgrec.errors import KgrecError
from kgrec.loaders.export import Export, ExportError
from kgrec.loaders.writeback import WriteBackError, check_run_id
from kgrec.model.inductive import CHECKPOINT_KEYS, read_checkpoint
from kgrec.paths import nearest_existing
from tests.conftest import assert_one_line_error, cli_env, run_cli


def test_nearest_existing_is_the_path_or_its_nearest_existing_parent(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "f").write_text("x")
    assert nearest_existing(tmp_path / "a") == tmp_path / "a"
    assert nearest_existing(tmp_path / "a" / "b" / "c") == tmp_path / "a"
    assert nearest_existing(tmp_path / "f" / "b") == tmp_path / "f"
    assert nearest_existing(Path("/no-such-kgrec-folder/x")) == Path("/")


@pytest.mark.parametrize("run_id", ["run-20261203-120000", "r0", "A", "refresh-1.2_x", "a" * 128])
def test_plain_run_ids_are_accepted(run_id: str) -> None:
    assert check_run_id(run_id) == run_id


@pytest.mark.parametrize("run_id", ["../../escaped", "a/b", "a\\b", "..", ".hidden", "", " r1", "r 1", "a" * 129, "é"])
def test_run_ids_that_are_not_plain_names_are_refused(run_id: str) -> None:
    with pytest.raises(WriteBackError, match="not a plain name"):
        check_run_id(run_id)


def test_read_checkpoint_refuses_missing_damaged_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(KgrecError, match="does not exist"):
        read_checkpoint(tmp_path / "kgrec.pt")
    (tmp_path / "garbage.pt").write_text("garbage\n")
    with pytest.raises(KgrecError, match="garbage.pt cannot be read .*damaged or not a kgrec checkpoint"):
        read_checkpoint(tmp_path / "garbage.pt")
    full = torch.randn(4)
    torch.save(full, tmp_path / "tensor.pt")
    with pytest.raises(KgrecError, match="is not a kgrec checkpoint: it lacks all"):
        read_checkpoint(tmp_path / "tensor.pt")
    torch.save({"state_dict": {}, "config": {}}, tmp_path / "old.pt")
    with pytest.raises(KgrecError, match="lacks train_config, relation_index, user_ids, item_ids, entity_ids"):
        read_checkpoint(tmp_path / "old.pt")
    assert read_checkpoint(tmp_path / "old.pt", keys=("state_dict",)) == {"state_dict": {}, "config": {}}
    torch.save({key: 0 for key in CHECKPOINT_KEYS}, tmp_path / "ok.pt")
    assert set(read_checkpoint(tmp_path / "ok.pt")) == set(CHECKPOINT_KEYS)


def test_a_train_checkpoint_holds_the_id_maps_and_loads_as_a_run_checkpoint(tmp_path: Path) -> None:
    """``kgrec train`` saves with :func:`save_checkpoint`; ``kgrec run --checkpoint`` loads with the pipeline's
    ``_load``, which checks the id maps against the graph's: it takes the checkpoint and scores as before."""
    from kgrec.model.harness import save_checkpoint
    from kgrec.model.kgrec_net import KGRec, KGRecConfig
    from kgrec.model.training import TrainConfig
    from kgrec.pipeline import _load
    from tests.unit.test_kgrec_net import E, I, T, U, tiny

    data = tiny()
    data.user_ids, data.item_ids, data.entity_ids = [f"u{k}" for k in range(U)], [f"i{k}" for k in range(I)], \
        [f"e{k}" for k in range(E)]
    text = torch.randn(I, T)
    model = KGRec(text, torch.randn(E, T), KGRecConfig(dim=8, num_layers=1),
                  TrainConfig(epochs=2, batch_size=16, eval_every=1, patience=2)).fit(data)
    path = save_checkpoint(model, tmp_path / "model" / "kgrec.pt", data, {"metrics": {}, "text_model": "m"})
    assert [p.name for p in path.parent.iterdir()] == ["kgrec.pt"]  # no .partial left behind
    saved = read_checkpoint(path)
    assert saved["item_ids"] == data.item_ids and saved["text_model"] == "m"
    assert saved["trained_item_ids"] == [f"i{k}" for k in range(I) if k != 9]  # tiny()'s item 9 never trains
    users = torch.arange(U)
    assert torch.allclose(_load(path, data, text).score(users), model.score(users), atol=1e-5)
    data.user_ids = data.user_ids[::-1]
    with pytest.raises(KgrecError, match="trained on other users"):
        _load(path, data, text)


def _export() -> Export:
    data = HeteroData()
    data["user"].num_nodes = 2
    data["user"].node_id = ["u0", "u1"]
    return Export(data=data, meta={"counts": {"user": 2}})


def test_export_round_trips_and_refuses_incomplete_or_damaged_folders(tmp_path: Path) -> None:
    folder = _export().save(tmp_path / "exp")
    assert Export.load(folder).meta == {"counts": {"user": 2}}
    with pytest.raises(ExportError, match="holds no export"):
        Export.load(tmp_path / "nothing")
    (folder / "meta.json").unlink()  # what an interrupted save leaves: meta.json is written last
    with pytest.raises(ExportError, match="incomplete .no meta.json"):
        Export.load(folder)
    _export().save(folder)
    (folder / "graph.pt").write_text("garbage\n")
    with pytest.raises(ExportError, match="cannot be read .*export again"):
        Export.load(folder)
    torch.save(torch.zeros(2), folder / "graph.pt")
    with pytest.raises(ExportError, match="holds a Tensor, not an export's HeteroData"):
        Export.load(folder)
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ExportError, match="is a file, not a folder"):
        _export().save(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.parametrize("command, out", [
    (["export"], "taken"), (["export"], "taken/sub"), (["train", "--export", "exp"], "taken/sub"),
    (["evaluate", "--export", "exp", "--models", "popularity"], "taken")])
def test_an_out_folder_that_is_a_file_is_refused_before_any_work(tmp_path: Path, command: list[str], out: str) -> None:
    """Before: ``export`` read the whole graph and ``train`` trained, then the save failed with a traceback.
    No Neo4j is configured here (nothing listens at the URI), so an export that started would fail otherwise."""
    (tmp_path / "taken").write_text("mine")
    env = cli_env(NEO4J_URI="bolt://127.0.0.1:1", NEO4J_PASSWORD="not-used-1234", KGREC_DATA_DIR=str(tmp_path / "d"))
    result = run_cli(*command, "--out", out, env=env, cwd=tmp_path)
    where = "is a file" if out == "taken" else "is under taken, which is a file"
    assert_one_line_error(result, f"--out {out} {where}, not a folder")
    assert (tmp_path / "taken").read_text() == "mine"


def test_comparison_table_shows_best_epochs_as_integers_and_blank_where_none(tmp_path: Path) -> None:
    """A column with None beside numbers was float: best epoch 12 was written as 12.0."""
    from kgrec.model.harness import Result, write_results

    results = [Result("popularity", {"ndcg@20": 0.1}, 0.0, 1, None, []),
               Result("kgrec", {"ndcg@20": 0.25}, 3.0, 1, 12, [(1, 0.7, {}), (2, 0.5, {"ndcg@20": 0.2})])]
    paths = write_results(results, tmp_path, "t")
    assert paths["csv"].read_text().splitlines()[1:] == ["popularity,0.1,0.0,", "kgrec,0.25,3.0,12"]
    assert "| 3.0 | 12 |" in paths["md"].read_text() and paths["png"].stat().st_size > 0
