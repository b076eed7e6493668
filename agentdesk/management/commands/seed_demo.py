from django.core.management.base import BaseCommand

from agentdesk.demo import AGENT_USERNAMES, DEMO_PASSWORD, SUPERVISOR_USERNAME, seed_demo


class Command(BaseCommand):
    help = "Create (or bring up to date) the demo logins, accounts and campaigns. Idempotent."

    def handle(self, *args, **options):
        summary = seed_demo()
        self.stdout.write(
            f"demo ready: {summary.users} logins, {summary.campaigns} campaigns, {summary.leads} leads "
            f"(agents {AGENT_USERNAMES[0]}..{AGENT_USERNAMES[-1]}, supervisor {SUPERVISOR_USERNAME}, "
            f"password {DEMO_PASSWORD})"
        )
