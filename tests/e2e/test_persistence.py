"""State survives a graceful restart and a crash; shutdown on SIGTERM is clean."""

import signal
import urllib.request

from conftest import HANDLER_ZIP, create


def test_everything_survives_a_restart(make_server, tmp_path):
    data = tmp_path / "persist"
    server = make_server(data_dir=data)
    lam = server.client()
    create(lam, "keeper", Environment={"Variables": {"K1": "v"}}, Tags={"t": "1"}, MemorySize=256)
    lam.update_function_configuration(FunctionName="keeper", Description="kept")
    revision = lam.get_function_configuration(FunctionName="keeper")["RevisionId"]
    assert server.stop(signal.SIGTERM) == 0
    assert not (data / "server.json").exists(), "graceful shutdown forgets the endpoint"

    again = make_server(data_dir=data)
    lam = again.client()
    got = lam.get_function(FunctionName="keeper")
    config = got["Configuration"]
    assert (config["MemorySize"], config["Description"], config["RevisionId"]) == (256, "kept", revision)
    assert config["Environment"] == {"Variables": {"K1": "v"}}
    assert got["Tags"] == {"t": "1"}
    with urllib.request.urlopen(got["Code"]["Location"]) as response:
        assert response.read() == HANDLER_ZIP


def test_state_survives_kill_9(make_server, tmp_path):
    data = tmp_path / "crash"
    server = make_server(data_dir=data)
    create(server.client(), "survivor")
    server.stop(signal.SIGKILL)
    again = make_server(data_dir=data)
    assert again.client().get_function(FunctionName="survivor")["Configuration"]["State"] == "Active"


def test_code_is_stored_once_per_content(make_server, tmp_path):
    server = make_server(data_dir=tmp_path / "dedupe")
    lam = server.client()
    create(lam, "one")
    create(lam, "two")
    blobs = list((tmp_path / "dedupe" / "code" / "sha256").iterdir())
    assert len(blobs) == 1
    lam.delete_function(FunctionName="one")
    assert len(list((tmp_path / "dedupe" / "code" / "sha256").iterdir())) == 1
    lam.delete_function(FunctionName="two")
    assert list((tmp_path / "dedupe" / "code" / "sha256").iterdir()) == []
