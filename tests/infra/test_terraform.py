"""infra/terraform (the AWS Lambda side): its structure, read with python-hcl2, and ``terraform validate``.

The structure tests read every .tf file and check what the design depends on:
the four handlers and their packages, a log group per function, partial batch
failures on the SQS mapping, the dead-letter redrive, the idempotency TTL, the
bucket's protections, secrets without values, and IAM without wildcard actions
(and ``"*"`` resources only for the actions that have no resource-level form).

``terraform fmt``/``validate`` run where a terraform binary and a local
filesystem mirror of the pinned AWS provider exist (see ``_provider_mirror``):
neither can be fetched from the package registries this project uses, so they
skip elsewhere; under CI they fail, like every missing tool.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, require_module, unavailable

TF_DIR = REPO / "infra" / "terraform"
FUNCTIONS = ("ecr_push", "scan_worker", "daily_rescan", "vulndb_refresh")
# Actions with no resource-level permissions: "*" is their only valid resource.
STAR_RESOURCE_ACTIONS = {"ecr:GetAuthorizationToken", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
PROVIDER_VERSION = "5.100.0"


# ---------------------------------------------------------------------------
# Reading the configuration
# ---------------------------------------------------------------------------


class Config:
    def __init__(self, files: dict[str, dict[str, Any]]) -> None:
        self.files = files
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.data: dict[tuple[str, str], dict[str, Any]] = {}
        self.locals: dict[str, Any] = {}
        self.variables: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        for doc in files.values():
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for item in doc.get(kind, []):
                    for rtype, named in item.items():
                        for name, body in named.items():
                            assert (rtype, name) not in target, f"{kind} {rtype}.{name} defined twice"
                            target[(rtype, name)] = body
            for item in doc.get("locals", []):
                self.locals.update(item)
            for item in doc.get("variable", []):
                self.variables.update(item)
            for item in doc.get("output", []):
                self.outputs.update(item)

    def of_type(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {name: body for (t, name), body in self.resources.items() if t == rtype}

    def one(self, rtype: str, name: str) -> dict[str, Any]:
        body = self.resources.get((rtype, name))
        assert body is not None, f"no resource {rtype}.{name}"
        return body


@pytest.fixture(scope="module")
def tf() -> Config:
    require_module("hcl2", "pip install 'python-hcl2>=8.1,<9' (the dev extra)")
    import hcl2
    from hcl2.utils import SerializationOptions

    options = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
    files = {}
    for path in sorted(TF_DIR.glob("*.tf")):
        with path.open() as f:
            files[path.name] = hcl2.load(f, serialization_options=options)
    assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf"} <= set(files), sorted(files)
    return Config(files)


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block NAME of a resource body."""
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected one {name} block, got {blocks!r}"
    return blocks[0]


def statements(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement of an aws_iam_policy_document, dynamic ones included."""
    yield from doc.get("statement", [])
    for dyn in doc.get("dynamic", []):
        if "statement" in dyn:
            yield from dyn["statement"]["content"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------
# Providers and functions
# ---------------------------------------------------------------------------


def test_provider_is_pinned(tf: Config) -> None:
    terraform = tf.files["versions.tf"]["terraform"][0]
    assert terraform["required_version"].startswith(">= 1.5")
    aws = terraform["required_providers"][0]["aws"]
    assert aws == {"source": "hashicorp/aws", "version": f"= {PROVIDER_VERSION}"}


def test_four_python_functions_with_their_handlers(tf: Config) -> None:
    functions = tf.locals["functions"]
    assert set(functions) == set(FUNCTIONS)
    for name in FUNCTIONS:
        assert functions[name]["handler"] == f"lambdas.{name}.handler.handler"
    [(name, fn)] = tf.of_type("aws_lambda_function").items()
    assert fn["for_each"] == "${local.functions}"
    assert fn["runtime"] == "python3.11"
    assert fn["handler"] == "${each.value.handler}"
    assert fn["filename"] == "${var.lambda_zip_path}"
    assert fn["source_code_hash"] == "${filebase64sha256(var.lambda_zip_path)}"
    assert block(fn, "tracing_config")["mode"] == "Active"
    # the workers and the refresh keep the vulnerability database in /tmp: more than Lambda's default 512 MB
    assert block(fn, "ephemeral_storage")["size"] == "${each.value.storage}"
    storage = tf.variables["function_storage_mb"]["default"]
    for name in ("scan_worker", "vulndb_refresh"):
        assert functions[name]["storage"] == "${var.function_storage_mb}"
    assert 1024 <= storage <= 10240
    assert fn["kms_key_arn"].startswith("${aws_kms_key.")
    assert "lambda_zip_path" in tf.variables


@pytest.mark.parametrize("name", FUNCTIONS)
def test_handler_packages_expose_handler(name: str) -> None:
    package = REPO / "lambdas" / name
    assert package.is_dir(), f"lambdas/{name}/ is missing"
    source = (package / "handler.py").read_text()
    tree = ast.parse(source)
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert "handler" in names, f"lambdas/{name}/handler.py defines no handler"


def test_every_function_has_its_log_group(tf: Config) -> None:
    groups = tf.of_type("aws_cloudwatch_log_group")
    for fn_name, fn in tf.of_type("aws_lambda_function").items():
        wanted = "/aws/lambda/" + fn["function_name"]
        matches = [g for g in groups.values() if g["name"] == wanted and g.get("for_each") == fn.get("for_each")]
        assert matches, f"aws_lambda_function.{fn_name}: no log group named {wanted}"
        group = matches[0]
        assert group.get("retention_in_days"), "log group without retention"
        assert group.get("kms_key_id"), "log group not encrypted with the stack's key"
        logging = block(fn, "logging_config")
        assert re.fullmatch(r"\$\{aws_cloudwatch_log_group\.\w+\[each\.key\]\.name\}", logging["log_group"])
        assert any("aws_cloudwatch_log_group" in d for d in fn.get("depends_on", [])), (
            "the function must wait for its log group (else Lambda creates one without retention)"
        )
    assert int(tf.variables["log_retention_days"]["default"]) >= 1


# ---------------------------------------------------------------------------
# Queues, triggers, idempotency
# ---------------------------------------------------------------------------


def test_scan_queue_redrives_to_its_dead_letter_queue(tf: Config) -> None:
    queue = tf.one("aws_sqs_queue", "scan")
    dlq = tf.one("aws_sqs_queue", "scan_dlq")
    redrive = queue["redrive_policy"]
    assert "deadLetterTargetArn = aws_sqs_queue.scan_dlq.arn" in redrive, redrive
    assert "maxReceiveCount = var.max_receive_count" in redrive, redrive
    assert int(tf.variables["max_receive_count"]["default"]) >= 2
    assert dlq["message_retention_seconds"] > queue["message_retention_seconds"]
    # Lambda's guidance: visibility timeout at least six times the function timeout.
    assert queue["visibility_timeout_seconds"] == "${var.scan_worker_timeout * 6}"
    allow = tf.one("aws_sqs_queue_redrive_allow_policy", "scan_dlq")
    assert "aws_sqs_queue.scan.arn" in allow["redrive_allow_policy"]
    for body in tf.of_type("aws_sqs_queue").values():
        assert body.get("sqs_managed_sse_enabled") is True or body.get("kms_master_key_id")


def test_sqs_mapping_reports_batch_item_failures(tf: Config) -> None:
    [mapping] = tf.of_type("aws_lambda_event_source_mapping").values()
    assert mapping["event_source_arn"] == "${aws_sqs_queue.scan.arn}"
    assert mapping["function_name"] == '${aws_lambda_function.function["scan_worker"].arn}'
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert 1 <= mapping["batch_size"] <= 10
    assert block(mapping, "scaling_config")["maximum_concurrency"]


def test_ecr_image_action_rule_targets_ecr_push(tf: Config) -> None:
    rule = tf.one("aws_cloudwatch_event_rule", "ecr_image_action")
    pattern = rule["event_pattern"]
    for needle in ('source = ["aws.ecr"]', '"detail-type" = ["ECR Image Action"]', '"action-type" = ["PUSH", "DELETE"]',
                   'result = ["SUCCESS"]'):  # fmt: skip
        assert needle in pattern, (needle, pattern)
    target = tf.one("aws_cloudwatch_event_target", "ecr_push")
    assert target["rule"] == "${aws_cloudwatch_event_rule.ecr_image_action.name}"
    assert target["arn"] == '${aws_lambda_function.function["ecr_push"].arn}'
    assert block(target, "dead_letter_config")["arn"] == "${aws_sqs_queue.invoke_dlq.arn}"
    permission = tf.one("aws_lambda_permission", "ecr_push_events")
    assert permission["principal"] == "events.amazonaws.com"
    assert permission["source_arn"] == "${aws_cloudwatch_event_rule.ecr_image_action.arn}"


def test_schedules_target_their_functions(tf: Config) -> None:
    schedules = tf.locals["schedules"]
    assert set(schedules) == {"daily_rescan", "vulndb_refresh"}
    for name, spec in schedules.items():
        assert spec["expression"] == f"${{var.{name}_schedule}}"
        assert tf.variables[f"{name}_schedule"]["default"].startswith(("cron(", "rate("))
    rule = tf.one("aws_cloudwatch_event_rule", "schedule")
    assert rule["for_each"] == "${local.schedules}"
    assert rule["schedule_expression"] == "${each.value.expression}"
    target = tf.one("aws_cloudwatch_event_target", "schedule")
    assert target["for_each"] == "${local.schedules}"
    assert target["rule"] == "${aws_cloudwatch_event_rule.schedule[each.key].name}"
    assert target["arn"] == "${aws_lambda_function.function[each.key].arn}"
    assert block(target, "dead_letter_config")["arn"] == "${aws_sqs_queue.invoke_dlq.arn}"
    permission = tf.one("aws_lambda_permission", "schedule")
    assert permission["for_each"] == "${local.schedules}"
    assert permission["principal"] == "events.amazonaws.com"
    assert permission["source_arn"] == "${aws_cloudwatch_event_rule.schedule[each.key].arn}"
    assert permission["function_name"] == "${aws_lambda_function.function[each.key].function_name}"


def test_idempotency_table_expires_records(tf: Config) -> None:
    table = tf.one("aws_dynamodb_table", "idempotency")
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["hash_key"] == "id"  # Powertools' default key attribute
    assert block(table, "ttl") == {"attribute_name": "expiration", "enabled": True}
    assert block(table, "point_in_time_recovery")["enabled"] is True
    assert block(table, "server_side_encryption")["enabled"] is True


# ---------------------------------------------------------------------------
# Bucket and secrets
# ---------------------------------------------------------------------------


def test_inventory_bucket_is_private_versioned_encrypted(tf: Config) -> None:
    ref = "${aws_s3_bucket.inventories.id}"
    pab = tf.one("aws_s3_bucket_public_access_block", "inventories")
    assert pab["bucket"] == ref
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert pab[flag] is True, flag
    versioning = tf.one("aws_s3_bucket_versioning", "inventories")
    assert versioning["bucket"] == ref
    assert block(versioning, "versioning_configuration")["status"] == "Enabled"
    sse = tf.one("aws_s3_bucket_server_side_encryption_configuration", "inventories")
    default = block(block(sse, "rule"), "apply_server_side_encryption_by_default")
    assert default["sse_algorithm"] == "aws:kms"
    assert tf.one("aws_s3_bucket_ownership_controls", "inventories")["bucket"] == ref


def test_secrets_are_created_without_values(tf: Config) -> None:
    secrets = tf.of_type("aws_secretsmanager_secret")
    assert set(secrets) == {"cosmos", "eventgrid"}
    assert not tf.of_type("aws_secretsmanager_secret_version"), "secret values never live in Terraform"
    text = "\n".join(p.read_text() for p in TF_DIR.glob("*.tf"))
    assert "secret_string" not in text and "secret_binary" not in text


# ---------------------------------------------------------------------------
# IAM
# ---------------------------------------------------------------------------


def _policy_documents(tf: Config) -> dict[str, dict[str, Any]]:
    return {name: body for (t, name), body in tf.data.items() if t == "aws_iam_policy_document"}


def test_iam_allows_no_wildcard_actions(tf: Config) -> None:
    docs = _policy_documents(tf)
    assert docs
    for name, doc in docs.items():
        for st in statements(doc):
            if st.get("effect", "Allow") != "Allow":
                continue  # deny statements (e.g. refuse non-TLS) may be broad on purpose
            actions = as_list(st.get("actions", []))
            assert actions, f"{name}: allow statement without actions (not_actions?) {st}"
            assert not st.get("not_actions") and not st.get("not_resources"), f"{name}: {st}"
            wild = [a for a in actions if "*" in a]
            assert not wild, f"{name}/{st.get('sid')}: wildcard actions {wild}"
            resources = as_list(st.get("resources", []))
            if "*" in resources:
                assert set(actions) <= STAR_RESOURCE_ACTIONS, (
                    f"{name}/{st.get('sid')}: '*' resource for {actions}; only {sorted(STAR_RESOURCE_ACTIONS)} may"
                )
            principals = st.get("principals", [])
            assert all(p.get("type") != "*" and "*" not in as_list(p.get("identifiers")) for p in principals), (
                f"{name}/{st.get('sid')}: allow to any principal"
            )


def test_key_policy_wildcard_is_the_account_default_only(tf: Config) -> None:
    """The KMS key policy is not an IAM policy: its one "kms:*" is the account-root default statement."""
    policy = tf.one("aws_kms_key", "main")["policy"]
    assert policy.count('"kms:*"') == 1
    parts = re.split(r"\{Sid = ", policy)[1:]
    [admin] = [s for s in parts if '"kms:*"' in s]
    assert admin.startswith('"KeyAdministrationByAccount"') and ':root"}' in admin, policy
    assert tf.one("aws_kms_key", "main")["enable_key_rotation"] is True
    for rtype in ("aws_iam_policy", "aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy"):
        for name, body in tf.of_type(rtype).items():
            assert "jsonencode" not in str(body.get("policy")), f"{rtype}.{name}: use aws_iam_policy_document"


def _actions(doc: dict[str, Any]) -> set[str]:
    return {a for st in statements(doc) if st.get("effect", "Allow") == "Allow" for a in as_list(st["actions"])}


def test_each_function_gets_only_what_it_uses(tf: Config) -> None:
    docs = _policy_documents(tf)
    common = _actions(docs["common"])
    assert common == {
        "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
        "kms:Decrypt", "kms:GenerateDataKey", "sqs:SendMessage",
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
    }  # fmt: skip
    for name in FUNCTIONS:
        assert docs[name]["source_policy_documents"] == [f'${{data.aws_iam_policy_document.common["{name}"].json}}']
    assert _actions(docs["ecr_push"]) == {"sqs:SendMessage"}
    assert _actions(docs["daily_rescan"]) == {"sqs:SendMessage", "secretsmanager:GetSecretValue"}
    assert _actions(docs["vulndb_refresh"]) == {
        "s3:GetObject", "s3:PutObject", "s3:ListBucket", "sqs:SendMessage", "secretsmanager:GetSecretValue",
    }  # fmt: skip
    for st in statements(docs["vulndb_refresh"]):
        if "s3:PutObject" in st["actions"]:  # it writes only the database's own prefix
            assert st["resources"] == ["${aws_s3_bucket.inventories.arn}/vulndb/*"]
    worker = _actions(docs["scan_worker"])
    assert {"ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "sts:AssumeRole"} <= worker
    for st in statements(docs["scan_worker"]):
        if "ecr:BatchGetImage" in st["actions"]:
            assert st["resources"] == "${var.ecr_repository_arns}"
        if "sts:AssumeRole" in st["actions"]:
            assert st["resources"] == "${sort(values(var.cross_account_role_arns))}"
        if "secretsmanager:GetSecretValue" in st["actions"]:
            assert all(r.startswith("${aws_secretsmanager_secret.") for r in st["resources"])
    for st in statements(docs["lambda_assume"]):
        assert st["principals"] == [{"type": "Service", "identifiers": ["lambda.amazonaws.com"]}]
    roles = tf.of_type("aws_iam_role_policy")
    assert set(roles) == {"function"} and roles["function"]["for_each"] == "${local.functions}"
    assert not tf.of_type("aws_iam_role_policy_attachment"), "no managed policies: inline documents only"


# ---------------------------------------------------------------------------
# terraform fmt / validate (where the binary and the provider are on disk)
# ---------------------------------------------------------------------------


def _provider_mirror() -> Path | None:
    """A local filesystem mirror holding the pinned AWS provider: $HULLWATCH_TF_PLUGIN_DIR, Terraform's
    implied mirror directories, or a mirror installed under /opt."""
    candidates = [Path(p) for p in [os.environ.get("HULLWATCH_TF_PLUGIN_DIR")] if p]
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    candidates += [Path.home() / ".terraform.d" / "plugins", data_home / "terraform" / "plugins"]
    candidates += [Path("/usr/local/share/terraform/plugins"), Path("/usr/share/terraform/plugins")]
    candidates += sorted(p.parent for p in Path("/opt").glob("*/registry.terraform.io"))
    wanted = Path("registry.terraform.io", "hashicorp", "aws", PROVIDER_VERSION)
    return next((c for c in candidates if (c / wanted).is_dir()), None)


def _terraform() -> tuple[str, Path]:
    exe = shutil.which("terraform")
    plugins = _provider_mirror()
    if not exe or plugins is None:
        unavailable(f"terraform and a local mirror of hashicorp/aws {PROVIDER_VERSION} are not on this machine")
    return exe, plugins


def test_terraform_fmt_and_validate(tmp_path: Path) -> None:
    exe, plugins = _terraform()
    work = tmp_path / "terraform"
    shutil.copytree(TF_DIR, work, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_DATA_DIR": str(tmp_path / "data")}

    def run(*args: str) -> str:
        done = subprocess.run([exe, *args], cwd=work, capture_output=True, text=True, timeout=180, env=env)
        assert done.returncode == 0, f"terraform {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    run("fmt", "-check", "-diff", "-recursive")
    run("init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={plugins}")
    out = run("validate", "-no-color")
    assert "Success" in out
