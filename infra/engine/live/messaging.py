"""API Gateway endpoint types, and where SNS, SQS and EventBridge deliver: subscriptions and
their endpoints, dead-letter (redrive) targets and queue policies, rules and their targets."""

from __future__ import annotations

from infra.engine.live.core import Unit, pages


def scan_apigateway(unit: Unit) -> None:
    with unit.step("GetRestApis"):
        for page in pages(unit.client(), "get_rest_apis"):
            for api in page["items"]:
                conf = api.get("endpointConfiguration") or {}
                unit.add("aws:apigateway/restApi:RestApi", api["id"], {
                    "name": api.get("name"), "policy": api.get("policy"),
                    "endpointConfiguration": {"types": conf.get("types"), "vpcEndpointIds": conf.get("vpcEndpointIds")},
                    "disableExecuteApiEndpoint": api.get("disableExecuteApiEndpoint"), "tags": api.get("tags"),
                }, arn=f"arn:{unit.partition}:apigateway:{unit.region}::/restapis/{api['id']}", name=api.get("name"))


def scan_apigatewayv2(unit: Unit) -> None:
    with unit.step("GetApis"):
        for page in pages(unit.client(), "get_apis"):
            for api in page["Items"]:
                unit.add("aws:apigatewayv2/api:Api", api["ApiId"], {
                    "name": api.get("Name"), "protocolType": api.get("ProtocolType"),
                    "disableExecuteApiEndpoint": api.get("DisableExecuteApiEndpoint"), "tags": api.get("Tags"),
                }, outputs={"apiEndpoint": api.get("ApiEndpoint")},
                    arn=f"arn:{unit.partition}:apigateway:{unit.region}::/apis/{api['ApiId']}", name=api.get("Name"))


def scan_sns(unit: Unit) -> None:
    sns = unit.client()
    topics: list[str] = []
    with unit.step("ListTopics"):
        topics = [t["TopicArn"] for page in pages(sns, "list_topics") for t in page["Topics"]]
    for arn in topics:
        with unit.step(f"topic {arn}"):
            a = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
            unit.add("aws:sns/topic:Topic", arn.rsplit(":", 1)[-1], {
                "name": arn.rsplit(":", 1)[-1], "policy": a.get("Policy"), "kmsMasterKeyId": a.get("KmsMasterKeyId"),
                "deliveryPolicy": a.get("DeliveryPolicy"),
            }, arn=arn)
    with unit.step("ListSubscriptions"):
        for page in pages(sns, "list_subscriptions"):
            for s in page["Subscriptions"]:
                sid = s.get("SubscriptionArn") or ""
                if not sid.startswith("arn:"):  # PendingConfirmation: still a path someone asked for
                    sid = f"{s.get('TopicArn')}:{s.get('Protocol')}:{s.get('Endpoint')}"
                unit.add("aws:sns/topicSubscription:TopicSubscription", sid, {
                    "topic": s.get("TopicArn"), "protocol": s.get("Protocol"), "endpoint": s.get("Endpoint"),
                }, arn=sid if sid.startswith("arn:") else None, name=sid.rsplit(":", 1)[-1])


def scan_sqs(unit: Unit) -> None:
    sqs = unit.client()
    urls: list[str] = []
    with unit.step("ListQueues"):
        urls = [u for page in pages(sqs, "list_queues") for u in page.get("QueueUrls") or []]
    for url in urls:
        with unit.step(f"queue {url}"):
            a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            name = url.rstrip("/").rsplit("/", 1)[-1]
            unit.add("aws:sqs/queue:Queue", name, {
                "name": name, "redrivePolicy": a.get("RedrivePolicy"), "policy": a.get("Policy"),
                "kmsMasterKeyId": a.get("KmsMasterKeyId"), "fifoQueue": a.get("FifoQueue") == "true" or None,
            }, outputs={"url": url}, arn=a.get("QueueArn"))


def scan_events(unit: Unit) -> None:
    events = unit.client()
    buses: list[dict] = []
    with unit.step("ListEventBuses"):
        buses = [b for page in pages(events, "list_event_buses") for b in page["EventBuses"]]
    for bus in buses:
        name = bus["Name"]
        if name != "default":
            unit.add("aws:cloudwatch/eventBus:EventBus", name, {"name": name, "policy": bus.get("Policy")},
                     arn=bus.get("Arn"))
        with unit.step(f"event bus {name}"):
            for page in pages(events, "list_rules", EventBusName=name):
                for r in page["Rules"]:
                    _rule(unit, events, name, r)
    with unit.step("ListApiDestinations"):
        for page in pages(events, "list_api_destinations"):
            for d in page["ApiDestinations"]:
                unit.add("aws:cloudwatch/eventApiDestination:EventApiDestination", d["Name"], {
                    "name": d["Name"], "invocationEndpoint": d.get("InvocationEndpoint"),
                    "httpMethod": d.get("HttpMethod"), "connectionArn": d.get("ConnectionArn"),
                }, arn=d.get("ApiDestinationArn"))


def _rule(unit: Unit, events, bus: str, r: dict) -> None:
    unit.add("aws:cloudwatch/eventRule:EventRule", f"{bus}/{r['Name']}", {
        "name": r["Name"], "eventBusName": bus, "eventPattern": r.get("EventPattern"),
        "scheduleExpression": r.get("ScheduleExpression"), "state": r.get("State"), "roleArn": r.get("RoleArn"),
    }, arn=r.get("Arn"), name=r["Name"])
    for page in pages(events, "list_targets_by_rule", Rule=r["Name"], EventBusName=bus):
        for t in page["Targets"]:
            unit.add("aws:cloudwatch/eventTarget:EventTarget", f"{bus}/{r['Name']}/{t['Id']}", {
                "rule": r["Name"], "eventBusName": bus, "targetId": t["Id"], "arn": t.get("Arn"),
                "roleArn": t.get("RoleArn"),
                "deadLetterConfig": {"arn": (t.get("DeadLetterConfig") or {}).get("Arn")},
            }, name=f"{r['Name']}/{t['Id']}")
