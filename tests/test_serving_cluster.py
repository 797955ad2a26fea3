"""The AWS layer of the serving cluster: EKS Auto Mode capacity, account pinning, the Kubernetes
version from the catalog, the API tunnel and the destroy order of role attachments."""

from __future__ import annotations

import json

import pytest

from infra.program.catalog import CatalogError, load_catalog, parse_catalog
from infra.program.components.cluster import AUTO_MODE_CLUSTER_POLICIES, AUTO_MODE_NODE_POLICIES
from stack_plans import STACKS, ZMO_ONLY, of_type, planned
from cli_run import run_script


def _export(plan, type_: str, name: str) -> dict:
    return next(r for r in plan.export["deployment"]["resources"]
                if r["type"] == type_ and r["urn"].endswith(f"::{name}"))


@pytest.mark.parametrize("stack", STACKS)
def test_capacity_is_eks_auto_mode_with_no_pulumi_managed_desired_size(stack):
    plan = planned(stack)
    (cluster,) = of_type(plan, "aws:eks/cluster:Cluster")
    compute = cluster.inputs["computeConfig"]
    assert compute["enabled"] is True and compute["nodePools"] == ["system"]
    node_role = next(r for r in of_type(plan, "aws:iam/role:Role") if r.name == "serving-nodes")
    assert compute["nodeRoleArn"] == node_role.outputs["arn"]
    assert cluster.inputs["storageConfig"] == {"blockStorage": {"enabled": True}}
    assert cluster.inputs["kubernetesNetworkConfig"]["elasticLoadBalancing"] == {"enabled": True}
    assert cluster.inputs["bootstrapSelfManagedAddons"] is False
    # No serving node group: nothing whose desired size a later `up` could reset.
    groups = of_type(plan, "aws:eks/nodeGroup:NodeGroup")
    assert [g.name for g in groups] == (["egress-nodes"] if plan.config.has("federated") else [])


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_depends_on_every_role_attachment_so_destroy_keeps_the_order(stack):
    plan = planned(stack)
    cluster = _export(plan, "aws:eks/cluster:Cluster", "serving-eks")
    attachments = {r["urn"].rsplit("::", 1)[1]: r for r in plan.export["deployment"]["resources"]
                   if r["type"] == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"}
    expected = {f"serving-cluster-{p}" for p in AUTO_MODE_CLUSTER_POLICIES} | {f"serving-nodes-{p}" for p in AUTO_MODE_NODE_POLICIES}
    assert expected <= set(attachments)
    assert {attachments[n]["urn"] for n in expected} <= set(cluster["dependencies"])


@pytest.mark.parametrize("stack", STACKS)
def test_provider_pins_the_stack_files_account(stack):
    plan = planned(stack)
    (provider,) = of_type(plan, "pulumi:providers:aws")
    assert json.loads(provider.inputs["allowedAccountIds"]) == ["111111111111"] == [plan.config.account_id]


@pytest.mark.parametrize("stack", STACKS)
def test_kubernetes_version_comes_from_the_catalog_and_is_in_standard_support(stack):
    (cluster,) = of_type(planned(stack), "aws:eks/cluster:Cluster")
    k8s = load_catalog().kubernetes
    assert cluster.inputs["version"] == k8s.version == "1.35"
    assert k8s.checked == "2026-11-30" and k8s.end_of_standard_support > k8s.checked


def test_catalog_refuses_a_version_out_of_standard_support_when_checked():
    import yaml
    raw = yaml.safe_load(load_catalog().path.read_text())
    raw["kubernetes"] = {"version": "1.33", "end_of_standard_support": "2026-07-29", "checked": "2026-11-30"}
    with pytest.raises(CatalogError, match="1.33 left EKS standard support on 2026-07-29"):
        parse_catalog(raw)
    raw["kubernetes"]["version"] = "latest"
    with pytest.raises(CatalogError, match="kubernetes.version"):
        parse_catalog(raw)


@pytest.mark.parametrize("stack", ["us", "eu"])
def test_connector_node_group_gets_the_add_ons_with_network_policy_on(stack):
    plan = planned(stack)
    addons = {a.inputs["addonName"]: a for a in of_type(plan, "aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"}
    assert json.loads(addons["vpc-cni"].inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


@pytest.mark.parametrize("stack", ZMO_ONLY)
def test_pure_auto_mode_stacks_install_no_self_managed_add_ons(stack):
    assert of_type(planned(stack), "aws:eks/addon:Addon") == []


@pytest.mark.parametrize("stack", STACKS)
def test_api_tunnel_is_a_private_ssm_instance_with_no_ingress(stack):
    plan = planned(stack)
    (instance,) = of_type(plan, "aws:ec2/instance:Instance")
    serving_subnets = {s.outputs["id"] if "id" in s.outputs else s.id
                       for s in of_type(plan, "aws:ec2/subnet:Subnet") if s.name.startswith("net-private-")}
    assert instance.inputs["subnetId"] in serving_subnets
    assert instance.inputs["associatePublicIpAddress"] is False
    assert instance.inputs["metadataOptions"]["httpTokens"] == "required"
    (key,) = of_type(plan, "aws:kms/key:Key")
    assert instance.inputs["rootBlockDevice"] == {"encrypted": True, "kmsKeyId": key.outputs["arn"], "volumeSize": 8}
    group = next(g for g in of_type(plan, "aws:ec2/securityGroup:SecurityGroup") if g.name == "api-tunnel")
    assert group.inputs["ingress"] == []
    assert group.inputs["egress"] == [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": [plan.config.vpc_cidr]}]
    attachment = next(a for a in of_type(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment") if a.name.startswith("api-tunnel"))
    assert attachment.inputs["policyArn"] == "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
    services = {e.inputs["serviceName"] for e in of_type(plan, "aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert {f"com.amazonaws.{plan.config.region}.{s}" for s in ("ssm", "ssmmessages", "ec2messages")} <= services
    outputs = plan.export["deployment"]["resources"][0]["outputs"]
    assert outputs["apiTunnelInstanceId"] == instance.id
    # The API admits the tunnel: 443 from the VPC.
    cluster_sg = next(g for g in of_type(plan, "aws:ec2/securityGroup:SecurityGroup") if g.name == "serving-cluster")
    assert cluster_sg.inputs["ingress"][0]["cidrBlocks"] == [plan.config.vpc_cidr]


@pytest.mark.parametrize("stack", ["sg", "us"])
def test_preview_role_gets_read_only_kubernetes_access(stack):
    plan = planned(stack)
    (entry,) = of_type(plan, "aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["principalArn"] == f"arn:aws:iam::111111111111:role/ai-companion-preview-{stack}"
    (association,) = of_type(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert association.inputs["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
    assert association.inputs["accessScope"] == {"type": "cluster"}
    # The deploy role is the cluster creator: admin without an entry of its own.
    (cluster,) = of_type(plan, "aws:eks/cluster:Cluster")
    assert cluster.inputs["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True}


def test_stack_file_without_account_is_refused_by_the_console_script(tmp_path):
    import shutil

    from infra.program.stackfiles import ROOT
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    text = (ROOT / "Pulumi.sg.yaml").read_text()
    (tmp_path / "Pulumi.sg.yaml").write_text("\n".join(line for line in text.splitlines() if "accountId" not in line))
    result = run_script(["--project-dir", str(tmp_path), "plan", "--stack", "sg"], timeout=120)
    assert result.returncode == 2
    assert "ai-companion:accountId: required key is missing" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("stack", STACKS)
def test_seeded_stack_audits_clean_offline(stack, tmp_path):
    """The full graph (AWS and cluster layers) passes the same audit as a state export."""
    export = tmp_path / f"{stack}.json"
    export.write_text(json.dumps(planned(stack).export))
    result = run_script(["audit", "--stack", stack, "--export", str(export)], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kubernetes:apps/v1:Deployment" in export.read_text()


def test_tunnel_ami_lookup_goes_through_the_stacks_regional_provider(monkeypatch):
    from infra.harness.synth import RealisticMocks, synthesize
    from stack_plans import SEEDED_DIGEST, values_with

    calls = []
    original = RealisticMocks.call

    def record(self, args):
        calls.append((args.token, dict(args.args), args.provider))
        return original(self, args)

    monkeypatch.setattr(RealisticMocks, "call", record)
    plan = synthesize("ksa", values_with("ksa", modelImageDigest=SEEDED_DIGEST))
    (provider,) = of_type(plan, "pulumi:providers:aws")
    (lookup,) = [c for c in calls if c[0] == "aws:ssm/getParameter:getParameter"]
    assert lookup[1]["name"].startswith("/aws/service/ami-amazon-linux-latest/al2023")
    assert lookup[2] and lookup[2].rsplit("::", 1)[1] == provider.id  # not the default provider ("")
    (instance,) = of_type(plan, "aws:ec2/instance:Instance")
    assert instance.inputs["ami"].startswith("ami-")
