"""Per-function settings as boto3 sees them: the recursion loop setting, runtime management,
and the RuntimeVersionConfig every configuration carries."""

import base64
import json

from conftest import create, error_of, make_zip

ARN = "arn:aws:lambda:us-east-1:000000000000:function:settings"


def test_recursion_and_runtime_management(lam):
    created = create(lam, "settings")
    runtime_arn = created["RuntimeVersionConfig"]["RuntimeVersionArn"]
    assert runtime_arn.startswith("arn:aws:lambda:us-east-1::runtime:") and len(runtime_arn) == 34 + 64
    assert lam.get_function_configuration(FunctionName="settings")["RuntimeVersionConfig"] == created["RuntimeVersionConfig"]

    assert lam.get_function_recursion_config(FunctionName="settings")["RecursiveLoop"] == "Terminate"
    assert lam.put_function_recursion_config(FunctionName="settings", RecursiveLoop="Allow")["RecursiveLoop"] == "Allow"
    assert lam.get_function_recursion_config(FunctionName="settings")["RecursiveLoop"] == "Allow"
    status, kind, _ = error_of(lambda: lam.put_function_recursion_config(FunctionName="nope", RecursiveLoop="Allow"))
    assert (status, kind) == (404, "ResourceNotFoundException")

    got = lam.get_runtime_management_config(FunctionName="settings")
    assert (got["UpdateRuntimeOn"], got["FunctionArn"]) == ("Auto", ARN) and "RuntimeVersionArn" not in got
    pinned = lam.put_runtime_management_config(FunctionName="settings", UpdateRuntimeOn="Manual",
                                               RuntimeVersionArn=runtime_arn)
    assert (pinned["UpdateRuntimeOn"], pinned["RuntimeVersionArn"]) == ("Manual", runtime_arn)
    assert lam.get_runtime_management_config(FunctionName="settings")["RuntimeVersionArn"] == runtime_arn
    status, kind, _ = error_of(lambda: lam.put_runtime_management_config(FunctionName="settings", UpdateRuntimeOn="Manual"))
    assert (status, kind) == (400, "InvalidParameterValueException")
    lam.put_runtime_management_config(FunctionName="settings", UpdateRuntimeOn="FunctionUpdate")
    assert lam.get_runtime_management_config(FunctionName="settings")["UpdateRuntimeOn"] == "FunctionUpdate"
    # A version has its own; $LATEST's is unchanged by it.
    lam.publish_version(FunctionName="settings")
    assert lam.get_runtime_management_config(FunctionName="settings", Qualifier="1")["UpdateRuntimeOn"] == "Auto"
    assert lam.get_runtime_management_config(FunctionName="settings", Qualifier="1")["FunctionArn"] == f"{ARN}:1"


LOGGING_PY = make_zip({"app.py": (
    "import logging\n"
    "logger = logging.getLogger()\n"
    "def handler(event, context):\n"
    "    logger.debug('a debug line')\n"
    "    logger.info('an info line')\n"
    "    logger.warning('a warning line')\n"
    "    return 'ok'\n"
)})
LOGGING_NODE = make_zip({"index.js": (
    "exports.handler = async () => { console.debug('a debug line'); console.info('an info line');\n"
    "  console.warn('a warning line'); return 'ok'; };\n"
)})


def log_records(lam, name):
    response = lam.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    assert json.loads(response["Payload"].read()) == "ok"
    lines = base64.b64decode(response["LogResult"]).decode().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")], lines


def test_json_logs_and_their_levels(lam):
    created = create(lam, "json-logs", LOGGING_PY, LoggingConfig={"LogFormat": "JSON"})
    assert created["LoggingConfig"] == {"LogFormat": "JSON", "ApplicationLogLevel": "INFO",
                                        "SystemLogLevel": "INFO", "LogGroup": "/aws/lambda/json-logs"}
    records, _ = log_records(lam, "json-logs")
    application = [r for r in records if "level" in r]
    assert [r["level"] for r in application] == ["INFO", "WARN"], records
    assert application[0]["message"] == "an info line" and application[0]["requestId"]
    types = [r["type"] for r in records if "type" in r]
    assert "platform.start" in types and "platform.report" in types, records
    report = next(r for r in records if r.get("type") == "platform.report")["record"]
    assert report["status"] == "success" and report["metrics"]["memorySizeMB"] == 128

    lam.update_function_configuration(FunctionName="json-logs", LoggingConfig={
        "ApplicationLogLevel": "WARN", "SystemLogLevel": "WARN"})
    lam.get_waiter("function_updated_v2").wait(FunctionName="json-logs")
    records, _ = log_records(lam, "json-logs")
    assert [r.get("level") for r in records] == ["WARN"], records

    lam.update_function_configuration(FunctionName="json-logs", LoggingConfig={"ApplicationLogLevel": "DEBUG",
                                                                                "SystemLogLevel": "INFO"})
    lam.get_waiter("function_updated_v2").wait(FunctionName="json-logs")
    records, _ = log_records(lam, "json-logs")
    assert [r["level"] for r in records if "level" in r] == ["DEBUG", "INFO", "WARN"]

    status, kind, message = error_of(lambda: create(lam, "text-levels", LOGGING_PY,
                                                     LoggingConfig={"LogFormat": "Text", "ApplicationLogLevel": "WARN"}))
    assert (status, kind) == (400, "InvalidParameterValueException"), message
    status, kind, _ = error_of(lambda: create(lam, "bad-level", LOGGING_PY,
                                              LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "LOUD"}))
    assert (status, kind) == (400, "ValidationException")
    # Back to text: the levels go, and the lines are Lambda's text lines again.
    updated = lam.update_function_configuration(FunctionName="json-logs", LoggingConfig={"LogFormat": "Text"})
    assert updated["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/json-logs"}
    lam.get_waiter("function_updated_v2").wait(FunctionName="json-logs")
    records, lines = log_records(lam, "json-logs")
    assert records == [] and any(line.startswith("START RequestId:") for line in lines)


def test_node_json_logs_honour_the_level(lam):
    create(lam, "json-node", LOGGING_NODE, Runtime="nodejs20.x", Handler="index.handler",
           LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN"})
    records, _ = log_records(lam, "json-node")
    assert [(r["level"], r["message"]) for r in records if "level" in r] == [("WARN", "a warning line")]
