from django.apps import AppConfig


class RiskConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "risk"

    def ready(self) -> None:
        # The update path runs the risk manager at step 4 of every bar; portfolio never
        # imports risk, so risk registers itself.
        from portfolio.services.update import risk_manager_register
        from risk.services import risk_session_open

        risk_manager_register(risk_session_open)
