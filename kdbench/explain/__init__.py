"""Explanations: explainers (captum), Quantus metrics configured and guarded, and the explanation stage of a job."""
