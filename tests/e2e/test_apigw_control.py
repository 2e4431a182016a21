"""API Gateway v2 HTTP APIs, the control plane, driven by boto3's `apigatewayv2` client and
the aws CLI against the real binary: quick create, every resource's operations, paging,
tags, each error class with API Gateway's wording, and state that survives a restart.
(Serving requests to these APIs is the HTTP front's, tested with it.)"""

import json

import pytest

from conftest import error_of, module_server


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "apigw")


def account_of(server):
    return server.client(service="sts").get_caller_identity()["Account"]


@pytest.fixture(scope="module")
def account(shared):
    return account_of(shared)


def function_arn(account, name="echo"):
    return f"arn:aws:lambda:us-east-1:{account}:function:{name}"


def apigw(server):
    return server.client(service="apigatewayv2")


def test_quick_create_with_the_aws_cli(shared, account):
    target = function_arn(account)
    created = json.loads(shared.aws("apigatewayv2", "create-api", "--name", "quick",
                                    "--protocol-type", "HTTP", "--target", target).stdout)
    api_id = created["ApiId"]
    assert len(api_id) == 10 and api_id.isalnum() and api_id.lower() == api_id
    assert created["ApiEndpoint"] == f"{shared.endpoint}/execute-api/{api_id}"
    assert created["ProtocolType"] == "HTTP"
    assert created["RouteSelectionExpression"] == "${request.method} ${request.path}"
    assert created["ApiKeySelectionExpression"] == "$request.header.x-api-key"
    assert created["DisableExecuteApiEndpoint"] is False
    assert "CreatedDate" in created

    routes = json.loads(shared.aws("apigatewayv2", "get-routes", "--api-id", api_id).stdout)["Items"]
    assert [r["RouteKey"] for r in routes] == ["$default"]
    assert routes[0]["ApiGatewayManaged"] is True
    integrations = json.loads(shared.aws("apigatewayv2", "get-integrations",
                                         "--api-id", api_id).stdout)["Items"]
    assert len(integrations) == 1
    integration = integrations[0]
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["IntegrationUri"] == target
    assert integration["PayloadFormatVersion"] == "2.0"
    assert integration["TimeoutInMillis"] == 30000
    assert routes[0]["Target"] == f"integrations/{integration['IntegrationId']}"
    stages = json.loads(shared.aws("apigatewayv2", "get-stages", "--api-id", api_id).stdout)["Items"]
    assert [(s["StageName"], s["AutoDeploy"]) for s in stages] == [("$default", True)]

    # Quick create with a route key.
    keyed = json.loads(shared.aws("apigatewayv2", "create-api", "--name", "keyed",
                                  "--protocol-type", "HTTP", "--target", target,
                                  "--route-key", "GET /hello").stdout)
    routes = json.loads(shared.aws("apigatewayv2", "get-routes",
                                   "--api-id", keyed["ApiId"]).stdout)["Items"]
    assert [r["RouteKey"] for r in routes] == ["GET /hello"]

    # Errors through the CLI.
    failed = shared.aws("apigatewayv2", "create-api", "--name", "ws", "--protocol-type", "WEBSOCKET",
                        "--route-selection-expression", "$request.body.action", check=False)
    assert failed.returncode != 0
    assert "BadRequestException" in failed.stderr and "WEBSOCKET" in failed.stderr
    failed = shared.aws("apigatewayv2", "get-api", "--api-id", "nope000000", check=False)
    assert "NotFoundException" in failed.stderr
    assert f"Invalid API identifier specified {account}:nope000000" in failed.stderr

    shared.aws("apigatewayv2", "delete-api", "--api-id", api_id)
    shared.aws("apigatewayv2", "delete-api", "--api-id", keyed["ApiId"])


def test_apis_update_cors_and_paging(shared, account):
    client = apigw(shared)
    created = [client.create_api(Name=f"paged-{i}", ProtocolType="HTTP", Description="d",
                                 Version="1", Tags={"n": str(i)})
               for i in range(5)]
    assert all(c["ResponseMetadata"]["HTTPStatusCode"] == 201 for c in created)
    ids = sorted(c["ApiId"] for c in created)
    got = client.get_api(ApiId=ids[0])
    assert got["Name"].startswith("paged-") and got["Version"] == "1" and got["Description"] == "d"
    assert got["Tags"]["n"]

    seen, token = [], None
    while True:
        kwargs = {"MaxResults": "2"} | ({"NextToken": token} if token else {})
        page = client.get_apis(**kwargs)
        assert len(page["Items"]) <= 2
        seen += [a["ApiId"] for a in page["Items"]]
        token = page.get("NextToken")
        if not token:
            break
    assert [i for i in seen if i in ids] == ids
    assert error_of(lambda: client.get_apis(MaxResults="0"))[1] == "BadRequestException"

    updated = client.update_api(ApiId=ids[0], Name="renamed", CorsConfiguration={
        "AllowOrigins": ["https://example.com"], "AllowMethods": ["GET", "POST"],
        "AllowHeaders": ["content-type"], "ExposeHeaders": ["x-id"], "MaxAge": 300,
        "AllowCredentials": True})
    assert updated["Name"] == "renamed"
    assert updated["CorsConfiguration"] == {
        "AllowOrigins": ["https://example.com"], "AllowMethods": ["GET", "POST"],
        "AllowHeaders": ["content-type"], "ExposeHeaders": ["x-id"], "MaxAge": 300,
        "AllowCredentials": True}
    status, code, message = error_of(lambda: client.update_api(
        ApiId=ids[0], CorsConfiguration={"AllowOrigins": ["*"], "AllowCredentials": True}))
    assert (status, code) == (400, "BadRequestException")
    assert message == "allow-credentials is not supported if 'allow-origin' is *"
    deleted = client.delete_cors_configuration(ApiId=ids[0])
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "CorsConfiguration" not in client.get_api(ApiId=ids[0])
    client.update_api(ApiId=ids[0], DisableExecuteApiEndpoint=True)
    assert client.get_api(ApiId=ids[0])["DisableExecuteApiEndpoint"] is True

    for api_id in ids:
        assert client.delete_api(ApiId=api_id)["ResponseMetadata"]["HTTPStatusCode"] == 204
    status, code, message = error_of(lambda: client.get_api(ApiId=ids[0]))
    assert (status, code) == (404, "NotFoundException")
    assert message == f"Invalid API identifier specified {account}:{ids[0]}"
    assert error_of(lambda: client.delete_api(ApiId=ids[0]))[1] == "NotFoundException"


def test_routes_and_integrations(shared, account):
    client = apigw(shared)
    api_id = client.create_api(Name="shop", ProtocolType="HTTP")["ApiId"]
    integration = client.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", PayloadFormatVersion="1.0",
        IntegrationUri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
                       f"{function_arn(account)}:live/invocations",
        Description="echo", TimeoutInMillis=5000)
    assert integration["ResponseMetadata"]["HTTPStatusCode"] == 201
    integration_id = integration["IntegrationId"]
    assert integration["IntegrationMethod"] == "POST"
    assert integration["ConnectionType"] == "INTERNET"
    assert integration["TimeoutInMillis"] == 5000
    assert client.get_integration(ApiId=api_id, IntegrationId=integration_id)["Description"] == "echo"
    updated = client.update_integration(ApiId=api_id, IntegrationId=integration_id,
                                        PayloadFormatVersion="2.0", TimeoutInMillis=29000)
    assert (updated["PayloadFormatVersion"], updated["TimeoutInMillis"]) == ("2.0", 29000)
    assert updated["IntegrationUri"].endswith(":live/invocations")
    assert [i["IntegrationId"] for i in client.get_integrations(ApiId=api_id)["Items"]] == [integration_id]

    # Integrations Gust cannot serve are refused, saying why.
    status, code, message = error_of(lambda: client.create_integration(
        ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationUri="https://example.com",
        IntegrationMethod="GET", PayloadFormatVersion="1.0"))
    assert (status, code) == (400, "BadRequestException") and "AWS_PROXY" in message
    _, code, message = error_of(lambda: client.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=function_arn(account)))
    assert code == "BadRequestException" and "PayloadFormatVersion" in message
    _, code, message = error_of(lambda: client.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=function_arn(account),
        PayloadFormatVersion="2.0", TimeoutInMillis=40000))
    assert code == "BadRequestException" and "30000" in message
    _, code, message = error_of(lambda: client.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri="not-an-arn",
        PayloadFormatVersion="2.0"))
    assert code == "BadRequestException" and message.startswith("Invalid integration URI specified")

    target = f"integrations/{integration_id}"
    route = client.create_route(ApiId=api_id, RouteKey="GET /items/{id}", Target=target,
                                OperationName="GetItem")
    assert route["ResponseMetadata"]["HTTPStatusCode"] == 201
    route_id = route["RouteId"]
    assert (route["AuthorizationType"], route["ApiKeyRequired"]) == ("NONE", False)
    assert route["ApiGatewayManaged"] is False
    client.create_route(ApiId=api_id, RouteKey="ANY /{proxy+}", Target=target)
    client.create_route(ApiId=api_id, RouteKey="$default")

    status, code, message = error_of(lambda: client.create_route(
        ApiId=api_id, RouteKey="GET /items/{id}", Target=target))
    assert (status, code) == (409, "ConflictException") and "GET /items/{id}" in message
    for key in ["GET /items/", "FETCH /x", "GET items", "GET /{proxy+}/x"]:
        assert error_of(lambda: client.create_route(ApiId=api_id, RouteKey=key))[1] \
            == "BadRequestException", key
    assert error_of(lambda: client.create_route(
        ApiId=api_id, RouteKey="GET /jwt", AuthorizationType="JWT"))[1] == "BadRequestException"
    status, code, _ = error_of(lambda: client.create_route(
        ApiId=api_id, RouteKey="GET /x", Target="integrations/missing"))
    assert (status, code) == (404, "NotFoundException")

    updated = client.update_route(ApiId=api_id, RouteId=route_id, RouteKey="GET /things/{id}",
                                  AuthorizationType="AWS_IAM")
    assert (updated["RouteKey"], updated["AuthorizationType"]) == ("GET /things/{id}", "AWS_IAM")
    assert client.get_route(ApiId=api_id, RouteId=route_id)["OperationName"] == "GetItem"
    keys = sorted(r["RouteKey"] for r in client.get_routes(ApiId=api_id)["Items"])
    assert keys == ["$default", "ANY /{proxy+}", "GET /things/{id}"]
    page = client.get_routes(ApiId=api_id, MaxResults="1")
    assert len(page["Items"]) == 1 and page["NextToken"]

    # The integration is in use.
    status, code, _ = error_of(lambda: client.delete_integration(
        ApiId=api_id, IntegrationId=integration_id))
    assert (status, code) == (409, "ConflictException")
    for r in client.get_routes(ApiId=api_id)["Items"]:
        assert client.delete_route(ApiId=api_id, RouteId=r["RouteId"])[
            "ResponseMetadata"]["HTTPStatusCode"] == 204
    assert client.delete_integration(ApiId=api_id, IntegrationId=integration_id)[
        "ResponseMetadata"]["HTTPStatusCode"] == 204
    status, code, message = error_of(lambda: client.get_route(ApiId=api_id, RouteId=route_id))
    assert (status, code) == (404, "NotFoundException") and route_id in message
    assert error_of(lambda: client.get_integration(
        ApiId=api_id, IntegrationId=integration_id))[1] == "NotFoundException"
    client.delete_api(ApiId=api_id)


def test_stages_deployments_and_tags(shared, account):
    client = apigw(shared)
    api_id = client.create_api(Name="staged", ProtocolType="HTTP")["ApiId"]
    status, code, message = error_of(lambda: client.create_deployment(ApiId=api_id))
    assert (status, code) == (400, "BadRequestException")
    assert message == "Unable to deploy API because no routes exists in this API"

    integration_id = client.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=function_arn(account),
        PayloadFormatVersion="2.0")["IntegrationId"]
    client.create_route(ApiId=api_id, RouteKey="GET /items",
                        Target=f"integrations/{integration_id}")

    stage = client.create_stage(ApiId=api_id, StageName="prod", Description="production",
                                StageVariables={"alias": "live"}, Tags={"tier": "1"},
                                DefaultRouteSettings={"ThrottlingBurstLimit": 100,
                                                      "ThrottlingRateLimit": 50.0},
                                RouteSettings={"GET /items": {"DetailedMetricsEnabled": True}})
    assert stage["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert stage["AutoDeploy"] is False and "DeploymentId" not in stage
    assert stage["StageVariables"] == {"alias": "live"}
    assert stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 50.0}
    assert stage["RouteSettings"] == {"GET /items": {"DetailedMetricsEnabled": True}}
    assert "CreatedDate" in stage and "LastUpdatedDate" in stage
    status, code, _ = error_of(lambda: client.create_stage(ApiId=api_id, StageName="prod"))
    assert (status, code) == (409, "ConflictException")
    status, code, message = error_of(lambda: client.create_stage(
        ApiId=api_id, StageName="dev", RouteSettings={"GET /nope": {}}))
    assert (status, code) == (404, "NotFoundException")
    assert message == "Unable to find Route by key GET /nope within the provided RouteSettings"
    assert error_of(lambda: client.create_stage(ApiId=api_id, StageName="bad name"))[1] \
        == "BadRequestException"
    client.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)

    deployment = client.create_deployment(ApiId=api_id, StageName="prod", Description="v1")
    assert deployment["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert deployment["DeploymentStatus"] == "DEPLOYED" and deployment["AutoDeployed"] is False
    deployment_id = deployment["DeploymentId"]
    assert client.get_stage(ApiId=api_id, StageName="prod")["DeploymentId"] == deployment_id
    got = client.get_deployment(ApiId=api_id, DeploymentId=deployment_id)
    assert got["Description"] == "v1" and "CreatedDate" in got
    second = client.create_deployment(ApiId=api_id)["DeploymentId"]
    listed = [d["DeploymentId"] for d in client.get_deployments(ApiId=api_id)["Items"]]
    assert sorted(listed) == sorted([deployment_id, second])
    # An auto-deploying stage takes no deployment.
    assert error_of(lambda: client.create_deployment(ApiId=api_id, StageName="$default"))[1] \
        == "BadRequestException"

    status, code, message = error_of(lambda: client.delete_deployment(
        ApiId=api_id, DeploymentId=deployment_id))
    assert (status, code) == (400, "BadRequestException")
    assert message == "Active stages pointing to this deployment must be moved or deleted"
    updated = client.update_stage(ApiId=api_id, StageName="prod", DeploymentId=second,
                                  StageVariables={"alias": "", "color": "blue"})
    assert updated["DeploymentId"] == second
    assert updated["StageVariables"] == {"color": "blue"}
    assert client.delete_deployment(ApiId=api_id, DeploymentId=deployment_id)[
        "ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(lambda: client.get_deployment(ApiId=api_id, DeploymentId=deployment_id))[1] \
        == "NotFoundException"
    names = sorted(s["StageName"] for s in client.get_stages(ApiId=api_id)["Items"])
    assert names == ["$default", "prod"]

    # Tags of the API and of a stage.
    api_arn = f"arn:aws:apigateway:us-east-1::/apis/{api_id}"
    assert client.tag_resource(ResourceArn=api_arn, Tags={"env": "prod", "team": "web"})[
        "ResponseMetadata"]["HTTPStatusCode"] == 201
    assert client.untag_resource(ResourceArn=api_arn, TagKeys=["team"])[
        "ResponseMetadata"]["HTTPStatusCode"] == 204
    assert client.get_tags(ResourceArn=api_arn)["Tags"] == {"env": "prod"}
    assert client.get_api(ApiId=api_id)["Tags"] == {"env": "prod"}
    stage_arn = f"{api_arn}/stages/prod"
    client.tag_resource(ResourceArn=stage_arn, Tags={"owner": "me"})
    assert client.get_tags(ResourceArn=stage_arn)["Tags"] == {"tier": "1", "owner": "me"}
    assert error_of(lambda: client.get_tags(
        ResourceArn="arn:aws:apigateway:us-east-1::/apis/nope000000"))[1] == "NotFoundException"

    assert client.delete_stage(ApiId=api_id, StageName="prod")[
        "ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(lambda: client.get_stage(ApiId=api_id, StageName="prod"))[0] == 404
    client.delete_api(ApiId=api_id)


def test_quotas_answer_too_many_requests(shared):
    client = apigw(shared)
    api_id = client.create_api(Name="many-stages", ProtocolType="HTTP")["ApiId"]
    for i in range(10):
        client.create_stage(ApiId=api_id, StageName=f"s{i}")
    status, code, _ = error_of(lambda: client.create_stage(ApiId=api_id, StageName="s10"))
    assert (status, code) == (429, "TooManyRequestsException")
    client.delete_api(ApiId=api_id)


def test_state_survives_a_restart(make_server):
    server = make_server()
    account = account_of(server)
    client = apigw(server)
    api_id = client.create_api(Name="durable", ProtocolType="HTTP",
                               Target=function_arn(account), Tags={"k": "v"})["ApiId"]
    client.create_stage(ApiId=api_id, StageName="v1")
    deployment_id = client.create_deployment(ApiId=api_id, StageName="v1")["DeploymentId"]
    server.stop()
    server.start()
    client = apigw(server)
    api = client.get_api(ApiId=api_id)
    assert (api["Name"], api["Tags"]) == ("durable", {"k": "v"})
    assert api["ApiEndpoint"] == f"{server.endpoint}/execute-api/{api_id}"
    assert [r["RouteKey"] for r in client.get_routes(ApiId=api_id)["Items"]] == ["$default"]
    assert client.get_stage(ApiId=api_id, StageName="v1")["DeploymentId"] == deployment_id
    assert client.get_deployment(ApiId=api_id, DeploymentId=deployment_id)["DeploymentStatus"] \
        == "DEPLOYED"
