"""The one error the evaluator raises for bad input: a ValueError with a one-line message."""


class EvaluationInputError(ValueError):
    """Labels, scores, predictions or options that the metrics cannot use, said in one line."""
