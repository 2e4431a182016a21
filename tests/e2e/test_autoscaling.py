"""Application Auto Scaling of provisioned concurrency, driven by boto3 and the aws CLI:
scalable targets, a scheduled action that changes the allocation when it fires, and
target tracking that scales out under sustained load and back in when it stops."""

import datetime
import threading
import time

import pytest

from conftest import create, error_of, make_zip, module_server

SLOW = make_zip({"app.py": "import time\ndef handler(event, context):\n"
                           "    time.sleep(event.get('sleep', 0))\n    return {}\n"})
DIMENSION = "lambda:function:ProvisionedConcurrency"


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    # A one-second metric period: target tracking decides in seconds, not minutes.
    yield from module_server(tmp_path_factory, "autoscaling", ["--autoscaling-period", "1s"])


def function_with_alias(lam, name):
    create(lam, name, SLOW, Timeout=30)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)


def requested(lam, name):
    try:
        return lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="live")[
            "RequestedProvisionedConcurrentExecutions"]
    except lam.exceptions.ProvisionedConcurrencyConfigNotFoundException:
        return 0


def wait_until(check, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    return check()


def test_scalable_targets_and_a_scheduled_action(shared):
    lam, scaling = shared.client(), shared.client(service="application-autoscaling")
    function_with_alias(lam, "scheduled")
    resource = "function:scheduled:live"
    scaling.register_scalable_target(ServiceNamespace="lambda", ResourceId=resource,
                                     ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=4)
    targets = scaling.describe_scalable_targets(ServiceNamespace="lambda")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(resource, 1, 4)]
    assert targets[0]["ScalableTargetARN"].startswith(
        "arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/")
    # Refused as AWS refuses: a function that does not exist, a bad dimension.
    assert error_of(lambda: scaling.register_scalable_target(
        ServiceNamespace="lambda", ResourceId="function:missing:live", ScalableDimension=DIMENSION,
        MinCapacity=1, MaxCapacity=2))[:2] == (400, "ValidationException")
    raw = shared.client(service="application-autoscaling", parameter_validation=False)
    assert error_of(lambda: raw.register_scalable_target(
        ServiceNamespace="lambda", ResourceId=resource, ScalableDimension="lambda:function:Nope",
        MinCapacity=1, MaxCapacity=2))[:2] == (400, "ValidationException")
    # A scheduled action a few seconds ahead raises the floor to 2 when it fires.
    at = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S")
    scaling.put_scheduled_action(ServiceNamespace="lambda", ResourceId=resource, ScalableDimension=DIMENSION,
                                 ScheduledActionName="morning", Schedule=f"at({at})",
                                 ScalableTargetAction={"MinCapacity": 2, "MaxCapacity": 4})
    # A cron in a time zone is accepted and listed with it.
    scaling.put_scheduled_action(ServiceNamespace="lambda", ResourceId=resource, ScalableDimension=DIMENSION,
                                 ScheduledActionName="evening", Schedule="cron(0 18 ? * MON-FRI *)",
                                 Timezone="Europe/Berlin",
                                 ScalableTargetAction={"MinCapacity": 1, "MaxCapacity": 4})
    actions = {a["ScheduledActionName"]: a for a in scaling.describe_scheduled_actions(
        ServiceNamespace="lambda", ResourceId=resource)["ScheduledActions"]}
    assert actions["evening"]["Timezone"] == "Europe/Berlin"
    assert actions["morning"]["Schedule"] == f"at({at})"
    assert error_of(lambda: scaling.put_scheduled_action(
        ServiceNamespace="lambda", ResourceId=resource, ScalableDimension=DIMENSION,
        ScheduledActionName="bad", Schedule="cron(0 18 * * MON-FRI *)",
        ScalableTargetAction={"MinCapacity": 1}))[:2] == (400, "ValidationException")
    assert requested(lam, "scheduled") == 0
    assert wait_until(lambda: requested(lam, "scheduled") == 2, 15), "the action did not fire"
    ready = wait_until(lambda: lam.get_provisioned_concurrency_config(
        FunctionName="scheduled", Qualifier="live")["Status"] == "READY", 20)
    assert ready
    config = lam.get_provisioned_concurrency_config(FunctionName="scheduled", Qualifier="live")
    assert config["AllocatedProvisionedConcurrentExecutions"] == 2
    target = scaling.describe_scalable_targets(ServiceNamespace="lambda", ResourceIds=[resource])["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)
    activities = scaling.describe_scaling_activities(ServiceNamespace="lambda", ResourceId=resource)["ScalingActivities"]
    assert any(a["StatusCode"] == "Successful" for a in activities), activities
    # The aws CLI reads the same.
    import json
    out = json.loads(shared.aws("application-autoscaling", "describe-scalable-targets",
                                "--service-namespace", "lambda").stdout)
    assert any(t["ResourceId"] == resource for t in out["ScalableTargets"])
    # Deregistering removes the target and its actions; the configuration stays.
    scaling.deregister_scalable_target(ServiceNamespace="lambda", ResourceId=resource, ScalableDimension=DIMENSION)
    assert scaling.describe_scalable_targets(ServiceNamespace="lambda", ResourceIds=[resource])["ScalableTargets"] == []
    assert requested(lam, "scheduled") == 2


def test_target_tracking_scales_out_under_load_and_back_in(shared):
    lam, scaling = shared.client(), shared.client(service="application-autoscaling")
    function_with_alias(lam, "tracked")
    resource = "function:tracked:live"
    lam.put_provisioned_concurrency_config(FunctionName="tracked", Qualifier="live", ProvisionedConcurrentExecutions=1)
    scaling.register_scalable_target(ServiceNamespace="lambda", ResourceId=resource,
                                     ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=4)
    policy = scaling.put_scaling_policy(
        PolicyName="utilisation", ServiceNamespace="lambda", ResourceId=resource, ScalableDimension=DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 0.5,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "LambdaProvisionedConcurrencyUtilization"}})
    assert policy["PolicyARN"].startswith("arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:")
    assert len(policy["Alarms"]) == 2
    # Sustained load: two callers keep the one provisioned environment (and more) busy.
    stop = threading.Event()

    def load():
        client = shared.client()
        while not stop.is_set():
            client.invoke(FunctionName="tracked", Qualifier="live", Payload=b'{"sleep": 0.4}')

    callers = [threading.Thread(target=load) for _ in range(3)]
    for caller in callers:
        caller.start()
    try:
        scaled_out = wait_until(lambda: requested(lam, "tracked") >= 2, 30)
    finally:
        stop.set()
        for caller in callers:
            caller.join()
    assert scaled_out, "no scale-out under sustained load"
    peak = requested(lam, "tracked")
    assert 2 <= peak <= 4
    # Idle: after 15 periods under the target it scales back in, never below MinCapacity.
    assert wait_until(lambda: requested(lam, "tracked") == 1, 45), requested(lam, "tracked")
    policies = scaling.describe_scaling_policies(ServiceNamespace="lambda", ResourceId=resource)["ScalingPolicies"]
    assert policies[0]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 0.5
