"""Every validation error class, with the AWS error code and message shape."""

import pytest
from conftest import ROLE, create, error_of


@pytest.fixture
def lam(server):
    # botocore checks minimums client-side; turn that off so the server's checks are tested.
    return server.client(parameter_validation=False)



def test_function_names(lam):
    status, code, message = error_of(lambda: create(lam, "bad name"))
    assert (status, code) == (400, "ValidationException")
    assert message.startswith("1 validation error detected: Value 'bad name' at 'functionName' failed to satisfy constraint: "
                              "Member must satisfy regular expression pattern")
    # A well-formed name over 64 characters: refused on create, not found everywhere else.
    status, code, message = error_of(lambda: create(lam, "x" * 65))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "less than or equal to 64" in message
    long = "x" * 65
    for call in [lambda: lam.get_function(FunctionName=long), lambda: lam.delete_function(FunctionName=long),
                 lambda: lam.invoke(FunctionName=long, Payload=b"{}")]:
        status, code, message = error_of(call)
        assert (status, code, message) == (
            404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{long}")
    status, code, _ = error_of(lambda: create(lam, "x" * 141))
    assert (status, code) == (400, "ValidationException")
    assert error_of(lambda: lam.get_function(FunctionName="a/b"))[:2] == (400, "ValidationException")
    # Reads and invokes take names with a dot, which no function can have: not found.
    assert error_of(lambda: lam.get_function(FunctionName="my.fn")) == (
        404, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:000000000000:function:my.fn")
    assert error_of(lambda: create(lam, "my.fn"))[:2] == (400, "ValidationException")
    # Both invoke headers are checked together.
    create(lam, "headers")
    status, code, message = error_of(lambda: lam.invoke(FunctionName="headers", InvocationType="Later", LogType="All"))
    assert (status, code) == (400, "ValidationException") and message.startswith("2 validation errors detected"), message
    status, code, message = error_of(lambda: create(lam, "dlq", DeadLetterConfig={"TargetArn": "nope"}))
    assert (status, code) == (400, "ValidationException") and "at 'deadLetterConfig.targetArn'" in message


@pytest.mark.parametrize("field,value,member", [
    ("MemorySize", 127, "memorySize"),
    ("MemorySize", 32769, "memorySize"),
    ("Timeout", 5401, "timeout"),
    ("Timeout", 0, "timeout"),
])
def test_ranges(lam, field, value, member):
    status, code, message = error_of(lambda: create(lam, "ranges", **{field: value}))
    assert (status, code) == (400, "ValidationException")
    assert f"Value '{value}' at '{member}' failed to satisfy constraint" in message


@pytest.mark.parametrize("field,value,limit", [
    ("MemorySize", 10241, 10240),
    ("Timeout", 901, 900),
])
def test_service_limits_inside_the_model(lam, field, value, limit):
    """Allowed by the model, refused by the service, in the service's own words."""
    status, code, message = error_of(lambda: create(lam, "limits", **{field: value}))
    assert (status, code, message) == (400, "ValidationException",
                                       f"'{field}' value failed to satisfy constraint: Member must have value less than or equal to {limit}")


def test_range_edges_are_accepted(lam):
    create(lam, "edge-min", MemorySize=128, Timeout=1, EphemeralStorage={"Size": 512})
    created = create(lam, "edge-max", MemorySize=10240, Timeout=900, EphemeralStorage={"Size": 10240})
    assert (created["MemorySize"], created["Timeout"], created["EphemeralStorage"]["Size"]) == (10240, 900, 10240)


def test_ephemeral_storage_and_architectures(lam):
    status, code, message = error_of(lambda: create(lam, "eph", EphemeralStorage={"Size": 32769}))
    assert (status, code) == (400, "ValidationException")
    assert "ephemeralStorage.size" in message
    status, code, message = error_of(lambda: create(lam, "eph", EphemeralStorage={"Size": 10241}))
    assert (status, code) == (400, "ValidationException")
    assert message.startswith("'EphemeralStorage' value failed to satisfy constraint")
    status, code, _ = error_of(lambda: create(lam, "arch", Architectures=["sparc"]))
    assert (status, code) == (400, "ValidationException")
    status, code, _ = error_of(lambda: create(lam, "arch2", Architectures=["x86_64", "arm64"]))
    assert (status, code) == (400, "ValidationException")
    assert create(lam, "arm", Architectures=["arm64"])["Architectures"] == ["arm64"]


def test_runtimes(lam):
    status, code, message = error_of(lambda: create(lam, "rt", Runtime="cobol85"))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message.startswith("Value cobol85 at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [")
    status, code, message = error_of(lambda: create(lam, "rt", Runtime="java21"))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "not supported by this Gust server" in message and "provided.al2023" in message
    for runtime in ["provided.al2", "provided.al2023", "python3.12"]:
        assert create(lam, "rt-" + runtime.replace(".", "-"), Runtime=runtime)["Runtime"] == runtime
    # Runtimes past their block dates are refused with Lambda's words, on create and update.
    for runtime, instead in [("nodejs14.x", "nodejs24.x"), ("python3.7", "python3.14"), ("provided", "provided.al2023")]:
        status, code, message = error_of(lambda: create(lam, "old-rt", Runtime=runtime))
        assert (status, code) == (400, "InvalidParameterValueException")
        assert message == (f"The runtime parameter of {runtime} is no longer supported for creating or updating "
                           f"AWS Lambda functions. We recommend you use the new runtime ({instead}) while creating "
                           "or updating functions.")
    status, _, message = error_of(lambda: lam.update_function_configuration(FunctionName="rt-python3-12", Runtime="python3.8"))
    assert status == 400 and message.startswith("The runtime parameter of python3.8 is no longer supported")


def test_handler_description_role(lam):
    assert error_of(lambda: create(lam, "h", Handler="has space"))[:2] == (400, "ValidationException")
    assert error_of(lambda: create(lam, "h", Handler="h" * 129))[:2] == (400, "ValidationException")
    assert error_of(lambda: create(lam, "d", Description="d" * 257))[:2] == (400, "ValidationException")
    status, code, message = error_of(lambda: create(lam, "r", Role="not-a-role"))
    assert (status, code) == (400, "ValidationException")
    assert "at 'role'" in message
    # A missing required member is `null`, written bare.
    status, code, message = error_of(lambda: lam.create_function(
        FunctionName="norole", Runtime="python3.12", Handler="app.handler", Code={"ZipFile": b"x"}))
    assert (status, code, message) == (400, "ValidationException",
                                       "1 validation error detected: Value null at 'role' failed to satisfy constraint: "
                                       "Member must not be null")
    status, code, message = error_of(lambda: lam.create_function())
    assert (status, code, message) == (400, "ValidationException", (
        "3 validation errors detected: "
        "Value null at 'functionName' failed to satisfy constraint: Member must not be null; "
        "Value null at 'role' failed to satisfy constraint: Member must not be null; "
        "Value null at 'code' failed to satisfy constraint: Member must not be null"))
    status, code, message = error_of(lambda: create(lam, "arch", Architectures=["x86_64", "sparc"]))
    assert (status, code, message) == (400, "ValidationException", (
        "2 validation errors detected: "
        "Value '[x86_64, sparc]' at 'architectures' failed to satisfy constraint: Member must have length less than or equal to 1; "
        "Value '[x86_64, sparc]' at 'architectures' failed to satisfy constraint: Member must satisfy constraint: "
        "[Member must satisfy enum value set: [x86_64, arm64], Member must not be null]"))
    # Qualifiers: the model's length and pattern; a well-formed one naming nothing is 404.
    status, code, message = error_of(lambda: lam.get_function(FunctionName="norole", Qualifier="a.b"))
    assert (status, code) == (400, "ValidationException")
    assert message.endswith("Member must satisfy regular expression pattern: \\$(LATEST(\\.PUBLISHED)?)|[a-zA-Z0-9-_$]+")
    status, code, _ = error_of(lambda: lam.get_function(FunctionName="norole", Qualifier="0"))
    assert (status, code) == (404, "ResourceNotFoundException")
    status, code, message = error_of(lambda: lam.list_functions(MasterRegion="nowhere"))
    assert (status, code) == (400, "ValidationException") and "at 'masterRegion'" in message
    status, code, message = error_of(lambda: lam.create_function(FunctionName="nohandler", Runtime="python3.12", Role=ROLE,
                                                                 Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18}))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "Runtime and Handler are mandatory" in message


def test_environment_variables(lam):
    status, code, message = error_of(lambda: create(lam, "env", Environment={"Variables": {"1BAD": "x"}}))
    assert (status, code) == (400, "ValidationException")
    assert "environment.variables" in message
    status, code, message = error_of(lambda: create(lam, "env", Environment={"Variables": {"AWS_REGION": "x"}}))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "reserved keys" in message and "AWS_REGION" in message
    # A NUL cannot reach a process environment (nor smuggle anything past it).
    status, code, message = error_of(lambda: create(lam, "env", Environment={"Variables": {"K1": "x\u0000--user"}}))
    assert (status, code) == (400, "InvalidParameterValueException") and "NUL" in message
    status, code, message = error_of(lambda: create(lam, "env", Handler="app.handler\u0000x"))
    assert (status, code) == (400, "ValidationException")
    # Exactly 4 KB of compact JSON passes; one byte more fails with the measured string.
    fits = {"K1": "v" * (4096 - len('{"K1":""}'))}
    assert create(lam, "env-fits", Environment={"Variables": fits})["Environment"]["Variables"] == fits
    too_big = {"K1": "v" * (4097 - len('{"K1":""}'))}
    status, code, message = error_of(lambda: create(lam, "env-big", Environment={"Variables": too_big}))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "exceeded the 4KB limit. String measured: {\"K1\":" in message


def test_tags_on_create(lam):
    status, code, _ = error_of(lambda: create(lam, "t", Tags={"k" * 129: "v"}))
    assert (status, code) == (400, "ValidationException")
    status, code, message = error_of(lambda: create(lam, "t", Tags={"bad!": "ok"}))
    assert (status, code, message) == (400, "ValidationException", (
        "1 validation error detected: Value '{bad!=ok}' at 'tags' failed to satisfy constraint: Map keys must "
        "satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater "
        "than or equal to 1, Member must satisfy regular expression pattern: ([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)]"))
    status, code, message = error_of(lambda: create(lam, "t", Tags={f"k{i}": "v" for i in range(51)}))
    assert (status, code, message) == (400, "InvalidParameterValueException", "Number of tags exceeds resource tag limit.")


def test_duplicates_and_unknown_functions(lam):
    create(lam, "dup")
    status, code, message = error_of(lambda: create(lam, "dup"))
    assert (status, code, message) == (409, "ResourceConflictException", "Function already exist: dup")
    status, code, message = error_of(lambda: lam.get_function(FunctionName="ghost"))
    assert (status, code) == (404, "ResourceNotFoundException")
    assert message == "Function not found: arn:aws:lambda:us-east-1:000000000000:function:ghost"
    assert error_of(lambda: lam.delete_function(FunctionName="ghost"))[:2] == (404, "ResourceNotFoundException")
    assert error_of(lambda: lam.update_function_configuration(FunctionName="ghost", Timeout=3))[:2] == (404, "ResourceNotFoundException")
    # The front end's checks come before the lookup: a bad member of a missing function is 400.
    assert error_of(lambda: lam.update_function_configuration(FunctionName="ghost", MemorySize=1))[:2] == (400, "ValidationException")
    assert error_of(lambda: lam.update_function_code(FunctionName="ghost", ZipFile=b"x"))[:2] == (404, "ResourceNotFoundException")


def test_updates_validate_too_and_change_nothing_on_error(lam):
    create(lam, "upd")
    before = lam.get_function_configuration(FunctionName="upd")
    status, code, message = error_of(lambda: lam.update_function_configuration(FunctionName="upd", Description="ok", MemorySize=1))
    assert (status, code) == (400, "ValidationException")
    after = lam.get_function_configuration(FunctionName="upd")
    assert after["RevisionId"] == before["RevisionId"] and after["Description"] == ""
    status, code, message = error_of(lambda: lam.update_function_configuration(
        FunctionName="upd", Layers=["arn:aws:lambda:us-east-1:000000000000:layer:nope:1"]))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message == "Layer version arn:aws:lambda:us-east-1:000000000000:layer:nope:1 does not exist."


def test_unsupported_settings_are_refused_not_ignored(lam):
    status, code, message = error_of(lambda: create(lam, "vpc", VpcConfig={"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "VpcConfig" in message
    status, code, message = error_of(lambda: lam.create_function(FunctionName="s3", Runtime="python3.12", Role=ROLE,
                                                                 Handler="a.b", Code={"S3Bucket": "b", "S3Key": "k"}))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "S3" in message
