from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """The work that spans apps: the update and backtest paths, loading both YAML files,
    the demo setup, and the commands and tasks that drive them. It sits above
    ``portfolio`` and ``risk`` and calls each app's services directly; neither app imports
    it (quantsite/tests/test_architecture.py)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "operations"
