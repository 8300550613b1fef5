variable "aws_region" {
  description = "Region the Lambda side is deployed to."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "hullwatch"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,20}$", var.name_prefix))
    error_message = "name_prefix: 3-21 characters, lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "lambda_zip_path" {
  description = "Path of the deployment package: a zip holding lambdas/ and shared/ at its root and the dependencies (pip install --target)."
  type        = string
}

variable "ecr_repository_arns" {
  description = "ARNs of the ECR repositories the scan worker may pull from (BatchGetImage, GetDownloadUrlForLayer). Wildcards such as arn:aws:ecr:REGION:ACCOUNT:repository/team-* are allowed."
  type        = list(string)

  validation {
    condition     = length(var.ecr_repository_arns) > 0 && alltrue([for a in var.ecr_repository_arns : can(regex("^arn:aws[a-z-]*:ecr:[a-z0-9-]+:[0-9]{12}:repository/.+$", a))])
    error_message = "ecr_repository_arns: one or more ECR repository ARNs."
  }
}

variable "registry_allowlist" {
  description = "Registry hosts the backend may contact (ACCOUNT.dkr.ecr.REGION.amazonaws.com, ...). Events naming any other host are refused."
  type        = list(string)
}

variable "cross_account_role_arns" {
  description = "Roles in other accounts the scan worker assumes to read their registries, by account id (\"123456789012\" = \"arn:aws:iam::123456789012:role/hullwatch-reader\")."
  type        = map(string)
  default     = {}
}

variable "cosmos_endpoint" {
  description = "Cosmos DB account endpoint (https://ACCOUNT.documents.azure.com:443/). Not a secret."
  type        = string
}

variable "cosmos_database" {
  description = "Cosmos DB database name."
  type        = string
  default     = "hullwatch"
}

variable "eventgrid_topic_endpoint" {
  description = "Event Grid topic endpoint alerts are published to. Not a secret."
  type        = string
}

variable "cosmos_secret_name" {
  description = "Name of the Secrets Manager secret created for the Cosmos DB credential (a key, or a federated client's JSON). Its value is set outside Terraform."
  type        = string
  default     = "hullwatch/cosmos"
}

variable "eventgrid_secret_name" {
  description = "Name of the Secrets Manager secret created for the Event Grid credential. Its value is set outside Terraform."
  type        = string
  default     = "hullwatch/eventgrid"
}

variable "daily_rescan_schedule" {
  description = "EventBridge schedule expression of the daily rescan (UTC)."
  type        = string
  default     = "cron(0 3 * * ? *)"
}

variable "vulndb_refresh_schedule" {
  description = "EventBridge schedule expression of the vulnerability database refresh (UTC)."
  type        = string
  default     = "cron(15 * * * ? *)"
}

variable "function_storage_mb" {
  description = "Ephemeral storage (/tmp, MB) of the scan workers and the database refresh: it holds the vulnerability database."
  type        = number
  default     = 4096

  validation {
    condition     = var.function_storage_mb >= 512 && var.function_storage_mb <= 10240
    error_message = "function_storage_mb: 512 to 10240 (Lambda's limits)."
  }
}

variable "rescan_window_days" {
  description = "Images pushed or pulled within this many days are rescanned daily."
  type        = number
  default     = 30
}

variable "scan_worker_timeout" {
  description = "Scan worker timeout in seconds; the queue's visibility timeout is six times this."
  type        = number
  default     = 300

  validation {
    condition     = var.scan_worker_timeout >= 30 && var.scan_worker_timeout <= 900
    error_message = "scan_worker_timeout: 30 to 900 seconds."
  }
}

variable "scan_worker_memory" {
  description = "Scan worker memory (MB); CPU grows with it."
  type        = number
  default     = 2048
}

variable "scan_worker_concurrency" {
  description = "Most scan workers running at once (SQS event source maximum concurrency, and the function's reserved concurrency)."
  type        = number
  default     = 20

  validation {
    condition     = var.scan_worker_concurrency >= 2 && var.scan_worker_concurrency <= 1000
    error_message = "scan_worker_concurrency: 2 to 1000 (the SQS event source's limits)."
  }
}

variable "max_receive_count" {
  description = "Deliveries of a scan request before it moves to the dead-letter queue."
  type        = number
  default     = 5
}

variable "idempotency_ttl_seconds" {
  description = "How long a processed event id is remembered (Powertools idempotency expiration)."
  type        = number
  default     = 86400
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of the functions' log groups."
  type        = number
  default     = 365
}

variable "log_level" {
  description = "Powertools log level."
  type        = string
  default     = "INFO"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
