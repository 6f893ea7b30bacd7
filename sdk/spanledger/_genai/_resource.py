"""Cloud resource ids of GenAI calls, in the form the cloud's cost export names them."""

from __future__ import annotations

__all__ = ["inference_target_arn", "vertex_model_resource"]

# Prefixes of Bedrock system (cross-region) inference profile ids, e.g. ``us.anthropic.claude-...``.
_INFERENCE_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.")


def inference_target_arn(model_id: str, region: str | None, account: str | None) -> str:
    """The ARN Bedrock bills a ``modelId`` under: itself when it is an ARN, else the inference profile or
    foundation model it names."""
    if model_id.startswith("arn:"):
        return model_id
    if model_id.startswith(_INFERENCE_PROFILE_PREFIXES):
        return f"arn:aws:bedrock:{region or ''}:{account or ''}:inference-profile/{model_id}"
    return f"arn:aws:bedrock:{region or ''}::foundation-model/{model_id}"


def vertex_model_resource(project: str, location: str, publisher: str, model: str) -> str:
    """A Vertex AI publisher model's full resource name, as GCP's billing export gives ``resource.global_name``."""
    if model.startswith("projects/"):  # already a resource name (a tuned model or an endpoint)
        return f"//aiplatform.googleapis.com/{model}"
    model = model.removeprefix("models/").removeprefix(f"publishers/{publisher}/models/")
    return f"//aiplatform.googleapis.com/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}"
