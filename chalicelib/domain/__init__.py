"""Business rules and use cases: pure Python and pydantic, no boto3, PynamoDB or Chalice."""
