"""SnapStart's configuration through the Lambda API, as AWS answers it: `ApplyOn` stored on
the function and copied to published versions, `OptimizationStatus` On only for a published
version, Python 3.12 and later only, the model's enum for anything else."""

import pytest
from conftest import ROLE, error_of, make_zip, module_server

APP = make_zip({"app.py": "def handler(event, context):\n    return 'ok'\n"})


@pytest.fixture(scope="module")
def lam(tmp_path_factory):
    yield from (s.client() for s in module_server(tmp_path_factory, "snapstart-config"))


def create(lam, name, runtime="python3.12", handler="app.handler", **kwargs):
    return lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                               Code={"ZipFile": APP}, **kwargs)


def test_apply_on_is_stored_and_on_for_published_versions(lam):
    created = create(lam, "snappy", SnapStart={"ApplyOn": "PublishedVersions"})
    assert created["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"}
    lam.get_waiter("function_active_v2").wait(FunctionName="snappy")
    version = lam.publish_version(FunctionName="snappy")
    assert version["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    got = lam.get_function_configuration(FunctionName="snappy", Qualifier=version["Version"])
    assert got["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    assert lam.get_function_configuration(FunctionName="snappy")["SnapStart"]["OptimizationStatus"] == "Off"
    # Turned off: later versions are ordinary, the published one keeps its own.
    lam.update_function_configuration(FunctionName="snappy", SnapStart={"ApplyOn": "None"})
    lam.get_waiter("function_updated_v2").wait(FunctionName="snappy")
    assert lam.get_function_configuration(FunctionName="snappy")["SnapStart"] == {
        "ApplyOn": "None", "OptimizationStatus": "Off"}
    got = lam.get_function_configuration(FunctionName="snappy", Qualifier=version["Version"])
    assert got["SnapStart"]["OptimizationStatus"] == "On"


def test_runtimes_without_snapstart_and_bad_values_are_refused(lam):
    status, code, message = error_of(lambda: create(
        lam, "snap-node", runtime="nodejs20.x", handler="index.handler",
        SnapStart={"ApplyOn": "PublishedVersions"}))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message == "nodejs20.x is not supported for SnapStart enabled functions."
    status, code, message = error_of(lambda: create(
        lam, "snap-old", runtime="python3.11", SnapStart={"ApplyOn": "PublishedVersions"}))
    assert (status, code, message) == (
        400, "InvalidParameterValueException", "python3.11 is not supported for SnapStart enabled functions.")
    status, code, message = error_of(lambda: create(lam, "snap-bad", SnapStart={"ApplyOn": "Always"}))
    assert (status, code) == (400, "ValidationException")
    assert "Value 'Always' at 'snapStart.applyOn' failed to satisfy constraint: " \
           "Member must satisfy enum value set: [PublishedVersions, None]" in message
    # A SnapStart function cannot move to a runtime without it.
    create(lam, "snap-move", SnapStart={"ApplyOn": "PublishedVersions"})
    lam.get_waiter("function_active_v2").wait(FunctionName="snap-move")
    status, code, message = error_of(lambda: lam.update_function_configuration(
        FunctionName="snap-move", Runtime="python3.11"))
    assert (status, code) == (400, "InvalidParameterValueException")
