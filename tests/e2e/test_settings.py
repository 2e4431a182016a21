"""Per-function settings as boto3 sees them: the recursion loop setting, runtime management,
and the RuntimeVersionConfig every configuration carries."""

from conftest import create, error_of

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
