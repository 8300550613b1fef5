# hullwatch on AWS: the Lambda side of the event-driven scanning backend.
#
#   ECR "ECR Image Action" (PUSH/DELETE, SUCCESS) -> EventBridge -> ecr_push -> SQS scan-requests
#   SQS scan-requests -> scan_worker (partial batch failures) -> Cosmos DB, S3, Event Grid
#   EventBridge schedule -> daily_rescan -> SQS scan-requests
#   EventBridge schedule -> vulndb_refresh -> OSV database to S3 (vulndb/), rescans of affected images -> SQS
#
# Each function has its own role with only what it uses. Credentials for the
# Azure side (Cosmos DB, Event Grid) live in Secrets Manager; Terraform creates
# the secrets, never their values.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  functions = {
    ecr_push = {
      handler     = "lambdas.ecr_push.handler.handler"
      description = "Validates ECR Image Action events and enqueues scan requests."
      timeout     = 30
      memory      = 256
      storage     = 512
      concurrency = 10
    }
    scan_worker = {
      handler     = "lambdas.scan_worker.handler.handler"
      description = "Pulls, inventories, matches and persists images from the scan queue; publishes alerts."
      timeout     = var.scan_worker_timeout
      memory      = var.scan_worker_memory
      storage     = var.function_storage_mb
      concurrency = var.scan_worker_concurrency
    }
    daily_rescan = {
      handler     = "lambdas.daily_rescan.handler.handler"
      description = "Fans out rescans of recently pushed, pulled or running images through the scan queue."
      timeout     = 900
      memory      = 1024
      storage     = 512
      concurrency = 1
    }
    vulndb_refresh = {
      handler     = "lambdas.vulndb_refresh.handler.handler"
      description = "Refreshes the OSV database, publishes it to S3 and queues rescans of the images its changes affect."
      timeout     = 900
      memory      = 2048
      storage     = var.function_storage_mb
      concurrency = 1
    }
  }

  function_names = { for key, _ in local.functions : key => "${var.name_prefix}-${replace(key, "_", "-")}" }

  environment = {
    POWERTOOLS_SERVICE_NAME        = "hullwatch"
    POWERTOOLS_METRICS_NAMESPACE   = "hullwatch"
    POWERTOOLS_LOG_LEVEL           = var.log_level
    HULLWATCH_REGISTRY_ALLOWLIST   = join(",", var.registry_allowlist)
    HULLWATCH_SCAN_QUEUE_URL       = aws_sqs_queue.scan.url
    HULLWATCH_IDEMPOTENCY_TABLE    = aws_dynamodb_table.idempotency.name
    HULLWATCH_IDEMPOTENCY_TTL      = tostring(var.idempotency_ttl_seconds)
    HULLWATCH_INVENTORY_BUCKET     = aws_s3_bucket.inventories.bucket
    HULLWATCH_STORE                = "cosmos"
    HULLWATCH_COSMOS_ENDPOINT      = var.cosmos_endpoint
    HULLWATCH_COSMOS_DATABASE      = var.cosmos_database
    HULLWATCH_COSMOS_SECRET_ARN    = aws_secretsmanager_secret.cosmos.arn
    HULLWATCH_EVENTGRID_ENDPOINT   = var.eventgrid_topic_endpoint
    HULLWATCH_EVENTGRID_SECRET_ARN = aws_secretsmanager_secret.eventgrid.arn
    HULLWATCH_CROSS_ACCOUNT_ROLES  = jsonencode(var.cross_account_role_arns)
    HULLWATCH_RESCAN_WINDOW_DAYS   = tostring(var.rescan_window_days)
  }
}

# ---------------------------------------------------------------------------
# Encryption key: idempotency table, inventory bucket, log groups, secrets,
# function environment variables. Rotated yearly by KMS.
# ---------------------------------------------------------------------------

resource "aws_kms_key" "main" {
  description             = "${var.name_prefix}: table, bucket, logs, secrets and function environment"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  # A key policy, not an IAM policy: "Resource": "*" means this key.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # The default key policy: the account administers the key and IAM
        # policies grant its use (the function roles get Decrypt and
        # GenerateDataKey on this key only).
        Sid       = "KeyAdministrationByAccount"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # CloudWatch Logs encrypts the functions' log groups, and only those.
        Sid       = "CloudWatchLogsForFunctionLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action = [
          "kms:Encrypt",
          "kms:Decrypt",
          "kms:ReEncryptFrom",
          "kms:ReEncryptTo",
          "kms:GenerateDataKey",
          "kms:GenerateDataKeyWithoutPlaintext",
          "kms:DescribeKey",
        ]
        Resource = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.name_prefix}-*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.main.key_id
}

# ---------------------------------------------------------------------------
# Queues: scan requests with a dead-letter queue; failed asynchronous
# invocations (EventBridge -> Lambda) land in their own queue.
# ---------------------------------------------------------------------------

resource "aws_sqs_queue" "scan_dlq" {
  name                      = "${var.name_prefix}-scan-requests-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "scan" {
  name                       = "${var.name_prefix}-scan-requests"
  visibility_timeout_seconds = var.scan_worker_timeout * 6
  message_retention_seconds  = 345600
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.scan_dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "scan_dlq" {
  queue_url = aws_sqs_queue.scan_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.scan.arn]
  })
}

resource "aws_sqs_queue" "invoke_dlq" {
  name                      = "${var.name_prefix}-invoke-failures"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue_policy" "scan" {
  queue_url = aws_sqs_queue.scan.id
  policy    = data.aws_iam_policy_document.deny_insecure_transport["scan"].json
}

resource "aws_sqs_queue_policy" "scan_dlq" {
  queue_url = aws_sqs_queue.scan_dlq.id
  policy    = data.aws_iam_policy_document.deny_insecure_transport["scan_dlq"].json
}

resource "aws_sqs_queue_policy" "invoke_dlq" {
  queue_url = aws_sqs_queue.invoke_dlq.id
  policy    = data.aws_iam_policy_document.invoke_dlq.json
}

data "aws_iam_policy_document" "deny_insecure_transport" {
  for_each = {
    scan       = aws_sqs_queue.scan.arn
    scan_dlq   = aws_sqs_queue.scan_dlq.arn
    invoke_dlq = aws_sqs_queue.invoke_dlq.arn
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

data "aws_iam_policy_document" "invoke_dlq" {
  source_policy_documents = [data.aws_iam_policy_document.deny_insecure_transport["invoke_dlq"].json]

  # EventBridge targets dead-letter events they could not deliver.
  statement {
    sid       = "EventBridgeDeadLetters"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.invoke_dlq.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = concat([aws_cloudwatch_event_rule.ecr_image_action.arn], [for rule in aws_cloudwatch_event_rule.schedule : rule.arn])
    }
  }
}

# ---------------------------------------------------------------------------
# Powertools idempotency: one item per processed event, expired by TTL.
# ---------------------------------------------------------------------------

resource "aws_dynamodb_table" "idempotency" {
  name                        = "${var.name_prefix}-idempotency"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "id"
  deletion_protection_enabled = true

  attribute {
    name = "id"
    type = "S"
  }

  ttl {
    attribute_name = "expiration"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# ---------------------------------------------------------------------------
# Inventories (they can exceed Cosmos DB's item size): private, versioned, encrypted.
# ---------------------------------------------------------------------------

resource "aws_s3_bucket" "inventories" {
  bucket_prefix = "${var.name_prefix}-inventories-"
}

resource "aws_s3_bucket_public_access_block" "inventories" {
  bucket                  = aws_s3_bucket.inventories.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "inventories" {
  bucket = aws_s3_bucket.inventories.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "inventories" {
  bucket = aws_s3_bucket.inventories.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "inventories" {
  bucket = aws_s3_bucket.inventories.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "inventories" {
  bucket = aws_s3_bucket.inventories.id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.inventories]
}

resource "aws_s3_bucket_policy" "inventories" {
  bucket = aws_s3_bucket.inventories.id
  policy = data.aws_iam_policy_document.inventories_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.inventories]
}

data "aws_iam_policy_document" "inventories_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.inventories.arn, "${aws_s3_bucket.inventories.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# ---------------------------------------------------------------------------
# Credentials for the Azure side. Terraform creates the secrets, not their
# values: set them with `aws secretsmanager put-secret-value` (infra/README.md).
# ---------------------------------------------------------------------------

resource "aws_secretsmanager_secret" "cosmos" {
  name                    = var.cosmos_secret_name
  description             = "hullwatch: Cosmos DB credential (value set outside Terraform)"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret" "eventgrid" {
  name                    = var.eventgrid_secret_name
  description             = "hullwatch: Event Grid credential (value set outside Terraform)"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

# ---------------------------------------------------------------------------
# Lambda functions, their log groups and roles
# ---------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${local.function_names[each.key]}-role"
  description        = "hullwatch ${each.key} execution role"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

# What every function needs: its own log group, traces, the key, the
# asynchronous-invocation dead-letter queue.
data "aws_iam_policy_document" "common" {
  for_each = local.functions

  statement {
    sid       = "OwnLogGroup"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  # X-Ray has no resource-level permissions: "*" is the only valid resource.
  statement {
    sid       = "Tracing"
    effect    = "Allow"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "UseKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }

  statement {
    sid       = "InvokeDeadLetters"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.invoke_dlq.arn]
  }

  statement {
    sid    = "Idempotency"
    effect = "Allow"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
    ]
    resources = [aws_dynamodb_table.idempotency.arn]
  }
}

data "aws_iam_policy_document" "ecr_push" {
  source_policy_documents = [data.aws_iam_policy_document.common["ecr_push"].json]

  statement {
    sid       = "EnqueueScanRequests"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.scan.arn]
  }
}

data "aws_iam_policy_document" "scan_worker" {
  source_policy_documents = [data.aws_iam_policy_document.common["scan_worker"].json]

  statement {
    sid    = "ConsumeScanRequests"
    effect = "Allow"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.scan.arn]
  }

  statement {
    sid       = "Inventories"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.inventories.arn}/*"]
  }

  # ListBucket lets a missing inventory answer 404 rather than 403.
  statement {
    sid       = "InventoriesList"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.inventories.arn]
  }

  statement {
    sid       = "AzureCredentials"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.cosmos.arn, aws_secretsmanager_secret.eventgrid.arn]
  }

  # GetAuthorizationToken has no resource-level permissions: "*" is the only valid resource.
  statement {
    sid       = "RegistryToken"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid    = "PullConfiguredRepositories"
    effect = "Allow"
    actions = [
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:BatchCheckLayerAvailability",
    ]
    resources = var.ecr_repository_arns
  }

  dynamic "statement" {
    for_each = length(var.cross_account_role_arns) > 0 ? [1] : []

    content {
      sid       = "AssumeCrossAccountRegistryRoles"
      effect    = "Allow"
      actions   = ["sts:AssumeRole"]
      resources = sort(values(var.cross_account_role_arns))
    }
  }
}

data "aws_iam_policy_document" "daily_rescan" {
  source_policy_documents = [data.aws_iam_policy_document.common["daily_rescan"].json]

  statement {
    sid       = "EnqueueRescans"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.scan.arn]
  }

  statement {
    sid       = "CosmosCredential"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.cosmos.arn]
  }
}

# Reads the published version, writes new versions: only under the vulnerability database's prefix.
data "aws_iam_policy_document" "vulndb_refresh" {
  source_policy_documents = [data.aws_iam_policy_document.common["vulndb_refresh"].json]

  statement {
    sid       = "PublishVulnerabilityDatabase"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.inventories.arn}/vulndb/*"]
  }

  # ListBucket lets a first run's missing pointer answer 404 rather than 403.
  statement {
    sid       = "VulnerabilityDatabaseList"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.inventories.arn]
  }

  statement {
    sid       = "EnqueueRescans"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.scan.arn]
  }

  statement {
    sid       = "CosmosCredential"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.cosmos.arn]
  }
}

locals {
  function_policies = {
    ecr_push       = data.aws_iam_policy_document.ecr_push.json
    scan_worker    = data.aws_iam_policy_document.scan_worker.json
    daily_rescan   = data.aws_iam_policy_document.daily_rescan.json
    vulndb_refresh = data.aws_iam_policy_document.vulndb_refresh.json
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${local.function_names[each.key]}-policy"
  role   = aws_iam_role.function[each.key].id
  policy = local.function_policies[each.key]
}

resource "aws_lambda_function" "function" {
  for_each = local.functions

  function_name                  = local.function_names[each.key]
  description                    = each.value.description
  role                           = aws_iam_role.function[each.key].arn
  runtime                        = "python3.11"
  architectures                  = ["x86_64"]
  handler                        = each.value.handler
  filename                       = var.lambda_zip_path
  source_code_hash               = filebase64sha256(var.lambda_zip_path)
  timeout                        = each.value.timeout
  memory_size                    = each.value.memory
  reserved_concurrent_executions = each.value.concurrency
  kms_key_arn                    = aws_kms_key.main.arn

  # /tmp holds the vulnerability database (workers and the refresh) and image layers being read.
  ephemeral_storage {
    size = each.value.storage
  }

  environment {
    variables = local.environment
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.invoke_dlq.arn
  }

  depends_on = [aws_iam_role_policy.function, aws_cloudwatch_log_group.function]
}

# ---------------------------------------------------------------------------
# Triggers
# ---------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "ecr_image_action" {
  name        = "${var.name_prefix}-ecr-image-action"
  description = "ECR image pushes and deletions that succeeded"

  event_pattern = jsonencode({
    source        = ["aws.ecr"]
    "detail-type" = ["ECR Image Action"]
    detail = {
      "action-type" = ["PUSH", "DELETE"]
      result        = ["SUCCESS"]
    }
  })
}

resource "aws_cloudwatch_event_target" "ecr_push" {
  rule = aws_cloudwatch_event_rule.ecr_image_action.name
  arn  = aws_lambda_function.function["ecr_push"].arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = aws_sqs_queue.invoke_dlq.arn
  }
}

resource "aws_lambda_permission" "ecr_push_events" {
  statement_id  = "AllowEcrImageActionRule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["ecr_push"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.ecr_image_action.arn
}

# The scheduled functions: one rule, target and permission each.
locals {
  schedules = {
    daily_rescan = {
      expression  = var.daily_rescan_schedule
      description = "Daily rescan of recently pushed, pulled or running images"
      retries     = 3
    }
    vulndb_refresh = {
      expression  = var.vulndb_refresh_schedule
      description = "Refresh of the OSV vulnerability database and rescans of the images its changes affect"
      retries     = 2
    }
  }
}

resource "aws_cloudwatch_event_rule" "schedule" {
  for_each = local.schedules

  name                = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  description         = each.value.description
  schedule_expression = each.value.expression
}

resource "aws_cloudwatch_event_target" "schedule" {
  for_each = local.schedules

  rule = aws_cloudwatch_event_rule.schedule[each.key].name
  arn  = aws_lambda_function.function[each.key].arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = each.value.retries
  }

  dead_letter_config {
    arn = aws_sqs_queue.invoke_dlq.arn
  }
}

resource "aws_lambda_permission" "schedule" {
  for_each = local.schedules

  statement_id  = "AllowSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule[each.key].arn
}

resource "aws_lambda_event_source_mapping" "scan_worker" {
  event_source_arn                   = aws_sqs_queue.scan.arn
  function_name                      = aws_lambda_function.function["scan_worker"].arn
  batch_size                         = 10
  maximum_batching_window_in_seconds = 5
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.scan_worker_concurrency
  }
}
