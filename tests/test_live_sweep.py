"""The sweep outside the geography (infra/engine/live/sweep.py): every enabled region that is not
the geography's is inventoried for resources that hold data, and RSD-001 reports each one.

moto 5.2.5 lists 38 regions, opt-in ones "not-opted-in", and the China and GovCloud partitions too.
Resource Explorer is not in moto: its aggregator path is tested with botocore's Stubber.
"""

from __future__ import annotations

from botocore import xform_name

from infra.engine.live import scan_account, sweep
from infra.engine.rules import Context, evaluate
from infra.program.stackfiles import load_stack_config
from live_fixtures import ACCOUNT, HOME, StubSession, aws_env, moto, shared_session  # noqa: F401

EU = load_stack_config("eu")


def sweep_only(server, **kwargs):
    kwargs.setdefault("session", shared_session())
    result = scan_account(EU, endpoint_url=server.url, services=("s3", sweep.SERVICE), **kwargs)
    return result, evaluate(result.snapshot, Context.from_config(EU))


def placed_outside(report):
    return sorted((f.type, f.message.split()[2]) for f in report.findings if f.rule == "RSD-001")


def test_data_stores_made_by_hand_in_us_regions_of_an_eu_account_are_found(moto):
    """One full sweep (moto makes each region's backends on first use: it is slow) checks what is
    found, what is not, and which regions are read."""
    moto.client("s3", "us-east-1").create_bucket(Bucket="hand-made-copy")
    for region, name in (("us-west-2", "customers"), ("eu-west-1", "local")):
        moto.client("dynamodb", region).create_table(
            TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    moto.client("sqs", "ap-southeast-1").create_queue(QueueName="events")
    moto.client("secretsmanager", "us-east-2").create_secret(Name="db-password", SecretString="x")
    moto.client("logs", "eu-west-2").create_log_group(logGroupName="/app/prompts")  # London is not EU
    moto.client("s3", HOME).create_bucket(Bucket="local", CreateBucketConfiguration={"LocationConstraint": HOME})
    with moto.recording() as calls:
        result, report = sweep_only(moto)
    assert result.not_checked == []
    assert placed_outside(report) == [
        ("aws:cloudwatch/logGroup:LogGroup", "eu-west-2"), ("aws:dynamodb/table:Table", "us-west-2"),
        ("aws:s3/bucket:Bucket", "us-east-1"), ("aws:secretsmanager/secret:Secret", "us-east-2"),
        ("aws:sqs/queue:Queue", "ap-southeast-1")]
    table = next(f for f in report.findings if f.type == "aws:dynamodb/table:Table")
    assert "customers" in table.urn and "outside EU" in table.message

    swept = {c.region for c in calls if c.service == "dynamodb"}
    assert "us-east-1" in swept and "eu-west-2" in swept and "sa-east-1" in swept
    assert not swept & set(EU.geography.regions)  # the geography gets the full scan, not the sweep
    assert not {r for r in swept if r.startswith(("cn-", "us-gov-"))}  # another partition
    assert "ap-east-1" not in swept  # not opted in
    note = next(n for n in result.snapshot.notes if "not enabled" in n)
    assert "ap-east-1" in note and "eu-central-2" in note and "eu-south-2" not in note  # eu-south-2 is EU's own
    assert all(c.read_only for c in calls)


def test_a_subset_of_regions_skips_the_sweep(moto):
    moto.client("s3", "us-east-1").create_bucket(Bucket="hand-made-copy")
    result, report = sweep_only(moto, regions=[HOME])
    assert placed_outside(report) == [] and not any("swept" in n for n in result.snapshot.notes)


def test_a_region_that_cannot_be_swept_is_not_checked(aws_env):
    """A listing that fails in one region marks that region's inventory not checked (exit 3)."""
    session = StubSession()
    _regions(session.stub("ec2", HOME), "us-east-1")
    for listing in sweep.DATA_LISTINGS:
        stub = session.stub(listing.service, "us-east-1")
        if listing.operation == "ListTables":
            stub.add_client_error("list_tables", "AccessDeniedException", http_status_code=400)
        else:
            stub.add_response(xform_name(listing.operation), _empty(session, listing))
    session.stub("resourcegroupstaggingapi", "us-east-1").add_response("get_resources", {})
    result = scan_account(EU, session=session, services=(sweep.SERVICE,))
    assert [(n.service, n.region, n.kind) for n in result.not_checked] == [(sweep.SERVICE, "us-east-1", "access denied")]
    assert "dynamodb:ListTables" in result.not_checked[0].reason


def _empty(session, listing) -> dict:
    """An empty answer that satisfies the operation's required output members."""
    shape = session.client(listing.service, "us-east-1").meta.service_model.operation_model(
        listing.operation).output_shape
    blank = {"list": [], "boolean": False, "string": "", "structure": {}, "map": {}}
    return {m: blank[shape.members[m].type_name] for m in shape.required_members}


def _regions(stub, *extra):
    stub.add_response("describe_regions", {"Regions": [
        {"RegionName": r, "OptInStatus": "opt-in-not-required"} for r in (*EU.geography.regions, *extra)]},
        {"AllRegions": True})


def test_the_resource_explorer_aggregator_index_replaces_the_per_region_sweep(aws_env):
    session = StubSession()
    _regions(session.stub("ec2", HOME), "us-east-1", "us-west-2")
    session.stub("resource-explorer-2", HOME).add_response(
        "list_indexes", {"Indexes": [{"Region": "us-east-1", "Type": "AGGREGATOR", "Arn": "arn:aws:x"}]},
        {"Type": "AGGREGATOR"})
    session.stub("resource-explorer-2", "us-east-1").add_response("list_resources", {"Resources": [
        {"Arn": f"arn:aws:dynamodb:us-west-2:{ACCOUNT}:table/customers", "Region": "us-west-2"},
        {"Arn": f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/local", "Region": "eu-west-1"},  # in the geography
        {"Arn": f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/vpc-1", "Region": "us-east-1"},  # holds no data
        {"Arn": f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:cluster/j-1", "Region": "us-east-1"},
    ]})
    result = scan_account(EU, session=session, services=(sweep.SERVICE,))
    session.assert_no_pending_responses()
    report = evaluate(result.snapshot, Context.from_config(EU))
    assert result.not_checked == []
    assert placed_outside(report) == [("aws:dynamodb/table:Table", "us-west-2"), ("aws:emr/cluster:Cluster", "us-east-1")]
    assert any("aggregator index in us-east-1" in n for n in result.snapshot.notes)


def test_without_the_region_list_the_sweep_is_not_checked(aws_env):
    session = StubSession()
    session.stub("ec2", HOME).add_client_error("describe_regions", "UnauthorizedOperation", http_status_code=403)
    result = scan_account(EU, session=session, services=(sweep.SERVICE,))
    assert [(n.service, n.region, n.kind) for n in result.not_checked] == [
        (sweep.SERVICE, "outside the geography", "access denied")]


def test_arn_types_read_the_data_bearing_kinds():
    assert sweep.arn_type(f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders") == "rds:db"
    assert sweep.arn_type(f"arn:aws:sqs:us-east-1:{ACCOUNT}:events") == "sqs:"
    assert sweep.arn_type("arn:aws:s3:::bucket") == "s3:"
    assert sweep.arn_id(f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f") == "f"
    assert {"dynamodb:table", "rds:db", "sqs:"} <= set(sweep.ARN_TYPES)
