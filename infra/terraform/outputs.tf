output "function_names" {
  description = "Lambda function names by handler package."
  value       = { for key, fn in aws_lambda_function.function : key => fn.function_name }
}

output "function_role_arns" {
  description = "Execution role ARNs by handler package. Cross-account registry roles trust the scan_worker role."
  value       = { for key, role in aws_iam_role.function : key => role.arn }
}

output "scan_queue_url" {
  description = "Scan request queue."
  value       = aws_sqs_queue.scan.url
}

output "scan_dead_letter_queue_url" {
  description = "Scan requests that failed max_receive_count times."
  value       = aws_sqs_queue.scan_dlq.url
}

output "invoke_dead_letter_queue_url" {
  description = "Events EventBridge or Lambda could not deliver to ecr_push or daily_rescan."
  value       = aws_sqs_queue.invoke_dlq.url
}

output "idempotency_table_name" {
  description = "Powertools idempotency table."
  value       = aws_dynamodb_table.idempotency.name
}

output "inventory_bucket" {
  description = "Bucket of stored inventories."
  value       = aws_s3_bucket.inventories.bucket
}

output "cosmos_secret_arn" {
  description = "Set its value with aws secretsmanager put-secret-value."
  value       = aws_secretsmanager_secret.cosmos.arn
}

output "eventgrid_secret_arn" {
  description = "Set its value with aws secretsmanager put-secret-value."
  value       = aws_secretsmanager_secret.eventgrid.arn
}

output "kms_key_arn" {
  description = "Key encrypting the table, bucket, log groups, secrets and function environment."
  value       = aws_kms_key.main.arn
}
