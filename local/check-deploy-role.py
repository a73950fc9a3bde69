#!/usr/bin/env python3
"""Checks infra/deploy-role.yaml grants what `sam deploy` of template.yaml needs.

Run by local/lint-templates.sh with the cfn-lint virtualenv's Python (cfn-lint and the SAM
translator come from there); offline, no AWS call. What is needed:

1. every permission CloudFormation's resource handlers (create, read, update, delete) list for
   each resource type template.yaml becomes after the SAM transform (with every optional part
   switched on), and for the types of SAM CLI's own managed stack (its artifacts bucket);
   the handlers' lists are the resource provider schemas cfn-lint ships;
2. the calls SAM CLI 1.170 makes itself during `sam deploy` (read from its source:
   samcli/lib/deploy/deployer.py, samcli/lib/package/s3_uploader.py,
   samcli/lib/utils/managed_cloudformation_stack.py).

Each needed action must match an action of the role's policy (wildcards allowed), unless it is
in EXCLUDED below with the reason. Resource scoping is not checked here: cfn-lint and checkov
read the policy, and the README says what each statement is scoped to.
"""
import fnmatch
import json
import os
import sys

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS = os.path.join(os.path.dirname(__import__("cfnlint").__file__), "data", "schemas")

# sam deploy's own calls (besides what CloudFormation does with the caller's rights).
SAM_CLI_CALLS = {
    "cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet",
    "cloudformation:ExecuteChangeSet", "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents", "cloudformation:GetTemplateSummary",
    "cloudformation:CreateStack", "cloudformation:UpdateStack", "cloudformation:DeleteStack",
    "cloudformation:RollbackStack",
    # the S3 uploader: head_object (GetObject; ListBucket turns a 403 into a 404), upload
    # (PutObject), get_object_tagging, delete_object
    "s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:GetObjectTagging", "s3:DeleteObject",
    # the change set runs the SAM transform
    "cloudformation:CreateChangeSet",
}

# Handler permissions the role does not need, and why.
EXCLUDED = {
    "apigateway:TagResource": "not an IAM action (cfn-lint W3037): API Gateway tags through PUT/DELETE on /tags/*, granted",
    "apigateway:UntagResource": "not an IAM action (cfn-lint W3037), as above",
    "s3:REST.PUT.OBJECT": "not an IAM action (a log delivery detail in the Logs::LogGroup schema)",
    "firehose:TagDeliveryStream": "log delivery to Firehose, not used",
    "kinesis:DescribeStream": "DynamoDB Kinesis streaming destinations, not used",
    "kinesis:PutRecords": "DynamoDB Kinesis streaming destinations, not used",
    "iam:CreateServiceLinkedRole": "DynamoDB global table replicas and auto scaling, not used",
    "elasticfilesystem:DescribeMountTargets": "Lambda with EFS file systems, not used",
    "s3files:ListMountTargets": "Lambda with S3 file systems, not used",
    "lambda:PassCapacityProvider": "Lambda managed instances (capacity providers), not used",
    "s3tables:*": "S3 table buckets (AWS::S3::Bucket metadata tables), not used",
    "s3:CreateBucketMetadataTableConfiguration": "S3 metadata tables, not used",
    "s3:DeleteBucketMetadataTableConfiguration": "S3 metadata tables, not used",
    "s3:GetBucketMetadataTableConfiguration": "S3 metadata tables, not used",
    "s3:UpdateBucketMetadata*": "S3 metadata tables, not used",
    "logs:PutBearerTokenAuthentication": "bearer-token log ingestion, not used",
    "codedeploy:*": "AWS::Lambda::Alias traffic shifting through CodeDeploy (SAM's DeploymentPreference), not used: db-migrate's alias (AutoPublishAlias) only moves to each new version",
}

# Every optional part of template.yaml on, so every resource type appears.
ALL_ON = {
    "MskClusterArn": "arn:aws:kafka:us-east-1:123456789012:cluster/prod-cluster/0000",
    "KafkaAuth": "iam", "KafkaBootstrapServers": "b-1:9098",
    "DatabaseSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
    "SubnetIds": "subnet-1", "SecurityGroupIds": "sg-1", "AlarmEmail": "ops@example.com",
    "DatabaseInstanceId": "market-data-dev",
}

# The SAM CLI's managed stack (resolve_s3): its artifacts bucket and the bucket's policy.
SAM_MANAGED_STACK_TYPES = {"AWS::S3::Bucket", "AWS::S3::BucketPolicy"}


def handler_permissions(types):
    providers = json.load(open(os.path.join(SCHEMAS, "providers", "us-east-1.json")))
    needed = {}
    for t in sorted(types):
        schema = json.load(open(os.path.join(SCHEMAS, "resources", providers[t] + ".json")))
        for handler in ("create", "read", "update", "delete"):
            for perm in schema.get("handlers", {}).get(handler, {}).get("permissions", []):
                needed.setdefault(perm, set()).add(t)
    return needed


def policy_actions(path):
    tpl, errors = decode(path)
    if errors:
        sys.exit(f"{path}: {errors}")
    actions = []
    for res in tpl["Resources"].values():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for policy in res["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                if st.get("Effect") == "Allow":
                    a = st["Action"]
                    actions += a if isinstance(a, list) else [a]
    return actions


def matches(action, patterns):
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)


def main():
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    tpl, errors = decode(os.path.join(ROOT, "template.yaml"))
    if errors:
        sys.exit(f"template.yaml: {errors}")
    for res in tpl["Resources"].values():
        if res.get("Type") == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = "s3://artifacts/code.zip"  # what sam package puts

    class NoManagedPolicies:
        def load(self):
            return {}

    out = transform(tpl, ALL_ON, NoManagedPolicies())
    types = {r["Type"] for r in out["Resources"].values()} | SAM_MANAGED_STACK_TYPES
    needed = handler_permissions(types)
    for call in SAM_CLI_CALLS:
        needed.setdefault(call, set()).add("sam deploy")

    granted = policy_actions(os.path.join(ROOT, "infra", "deploy-role.yaml"))
    missing = {a: sorted(by) for a, by in needed.items()
               if not matches(a, granted) and not matches(a, EXCLUDED)}
    print(f"check-deploy-role: {len(types)} resource types "
          f"({', '.join(sorted(types))}), {len(needed)} permissions needed, "
          f"{sum(1 for a in needed if matches(a, EXCLUDED))} excluded with reasons")
    if missing:
        for action, by in sorted(missing.items()):
            print(f"  missing {action}  (needed by {', '.join(by)})", file=sys.stderr)
        sys.exit("infra/deploy-role.yaml lacks the permissions above")
    print("check-deploy-role: infra/deploy-role.yaml grants every one")


if __name__ == "__main__":
    main()
