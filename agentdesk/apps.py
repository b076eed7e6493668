from django.apps import AppConfig


class AgentdeskConfig(AppConfig):
    name = "agentdesk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from agentdesk.signals import on_logout

        user_logged_out.connect(on_logout, dispatch_uid="agentdesk.signed_out")
