"""AWS Lambda handlers, one package each (aws-lambda-powertools). They adapt events to shared/ services."""
