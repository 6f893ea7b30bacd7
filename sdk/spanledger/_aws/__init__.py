"""boto3 / botocore instrumentation: S3, Bedrock runtime and SageMaker runtime spans with billing identity."""

from ._instrumentation import BotocoreInstrumentation

__all__ = ["BotocoreInstrumentation"]
