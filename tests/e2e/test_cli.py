"""The real aws CLI and Gust's own CLI against the server."""

import json

from conftest import HANDLER_ZIP


def test_aws_cli_lifecycle(server, tmp_path):
    package = tmp_path / "fn.zip"
    package.write_bytes(HANDLER_ZIP)
    created = json.loads(server.aws("lambda", "create-function", "--function-name", "cli-fn", "--runtime", "python3.12",
                                    "--role", "arn:aws:iam::000000000000:role/r", "--handler", "app.handler",
                                    "--zip-file", f"fileb://{package}").stdout)
    assert created["State"] == "Pending"
    server.aws("lambda", "wait", "function-active-v2", "--function-name", "cli-fn")
    server.aws("lambda", "update-function-configuration", "--function-name", "cli-fn", "--timeout", "10",
               "--environment", "Variables={MODE=test}")
    server.aws("lambda", "wait", "function-updated-v2", "--function-name", "cli-fn")
    config = json.loads(server.aws("lambda", "get-function-configuration", "--function-name", "cli-fn").stdout)
    assert config["Timeout"] == 10 and config["Environment"]["Variables"] == {"MODE": "test"}
    listed = json.loads(server.aws("lambda", "list-functions").stdout)
    assert [f["FunctionName"] for f in listed["Functions"]] == ["cli-fn"]
    settings = json.loads(server.aws("lambda", "get-account-settings").stdout)
    assert settings["AccountUsage"]["FunctionCount"] == 1
    server.aws("lambda", "delete-function", "--function-name", "cli-fn")
    missing = server.aws("lambda", "get-function", "--function-name", "cli-fn", check=False)
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr


def test_aws_cli_reports_validation_errors(server, tmp_path):
    package = tmp_path / "fn.zip"
    package.write_bytes(HANDLER_ZIP)
    result = server.aws("lambda", "create-function", "--function-name", "cli-bad", "--runtime", "python3.12",
                        "--role", "arn:aws:iam::000000000000:role/r", "--handler", "app.handler",
                        "--memory-size", "40000", "--zip-file", f"fileb://{package}", check=False)
    assert result.returncode != 0
    assert "ValidationException" in result.stderr and "memorySize" in result.stderr


def test_gust_cli_deploy_list_get_delete(server, tmp_path):
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "app.py").write_text("def handler(event, context):\n    return event\n")
    (source / "pkg" / "util.py").write_text("X = 1\n")
    out = server.gust("deploy", str(source), "--name", "from-cli", "--runtime", "python3.12",
                      "--handler", "app.handler", "--memory", "256", "--env", "STAGE=dev").stdout
    assert out.startswith("created from-cli")
    assert "Active" in out

    lam = server.client()
    config = lam.get_function_configuration(FunctionName="from-cli")
    assert config["MemorySize"] == 256 and config["Environment"]["Variables"] == {"STAGE": "dev"}

    (source / "app.py").write_text("def handler(event, context):\n    return 2\n")
    out = server.gust("deploy", str(source), "--name", "from-cli", "--timeout", "20").stdout
    assert out.startswith("updated from-cli")
    updated = lam.get_function_configuration(FunctionName="from-cli")
    assert updated["Timeout"] == 20 and updated["CodeSha256"] != config["CodeSha256"]
    assert updated["Environment"]["Variables"] == {"STAGE": "dev"}, "env untouched when --env is not given"

    table = server.gust("functions", "list").stdout
    assert table.splitlines()[0].split() == ["NAME", "RUNTIME", "MEMORY", "TIMEOUT", "STATE", "LAST", "MODIFIED"]
    assert "from-cli" in table
    listed = json.loads(server.gust("functions", "list", "--json").stdout)
    assert [f["FunctionName"] for f in listed["Functions"]] == ["from-cli"]
    got = json.loads(server.gust("functions", "get", "from-cli", "--json").stdout)
    assert got["Configuration"]["Timeout"] == 20
    assert "Runtime        python3.12" in server.gust("functions", "get", "from-cli").stdout

    assert server.gust("functions", "delete", "from-cli").stdout.strip() == "deleted from-cli"
    missing = server.gust("functions", "get", "from-cli", check=False)
    assert missing.returncode == 1
    assert "ResourceNotFoundException" in missing.stderr


def test_gust_cli_errors_are_clear(server, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_text("x = 1\n")
    result = server.gust("deploy", str(source), "--name", "nort", check=False)
    assert result.returncode == 1
    assert "--runtime and --handler are needed" in result.stderr
    result = server.gust("deploy", str(source), "--name", "badmem", "--runtime", "python3.12",
                         "--handler", "app.handler", "--memory", "64", check=False)
    assert result.returncode == 1 and "ValidationException" in result.stderr
    result = server.gust("functions", "list", check=False, env={"GUST_ENDPOINT": "http://127.0.0.1:9"})
    assert result.returncode == 1 and "cannot reach Gust" in result.stderr
    # A wrong secret from the environment is refused by the server, not silently ignored.
    result = server.gust("functions", "list", check=False,
                         env={"GUST_ACCESS_KEY_ID": server.credentials[0], "GUST_SECRET_ACCESS_KEY": "wrong"})
    assert result.returncode == 1 and "InvalidSignatureException" in result.stderr
