"""``manage.py api_token create|list|revoke --user U``: a user's API tokens from the shell."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from operations.tokens import MAX_TTL_DAYS, api_token_create, api_token_list, api_token_revoke


class Command(BaseCommand):
    help = "Create, list or revoke a user's API tokens (the token is printed once, at create)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["create", "list", "revoke"])
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument(
            "--ttl-days", type=int, help=f"create: days it lives (1-{MAX_TTL_DAYS})"
        )
        parser.add_argument("--key", help="revoke: the token_key to revoke (from list)")
        parser.add_argument("--all", action="store_true", help="revoke: every token of the user")

    def handle(self, *args, action, user, ttl_days=None, key=None, all=False, **options):
        model = get_user_model()
        try:
            account = model.objects.get(**{model.USERNAME_FIELD: user})
        except model.DoesNotExist:
            raise CommandError(f"--user: no user {user!r}") from None
        if action == "create":
            if ttl_days is not None and not 1 <= ttl_days <= MAX_TTL_DAYS:
                raise CommandError(f"--ttl-days must be between 1 and {MAX_TTL_DAYS}")
            issued = api_token_create(user=account, ttl_days=ttl_days)
            expiry = issued.expiry.isoformat() if issued.expiry else "never"
            self.stderr.write(f"token {issued.token_key} for {user}, expires {expiry}:")
            self.stdout.write(issued.token)
        elif action == "list":
            for token in api_token_list(user=account):
                expiry = token.expiry.isoformat() if token.expiry else "never"
                self.stdout.write(
                    f"{token.token_key}  created {token.created.isoformat()}  expires {expiry}"
                )
        else:
            if (key is None) == (not all):
                raise CommandError("revoke needs exactly one of --key KEY or --all")
            revoked = api_token_revoke(user=account, token_key=None if all else key)
            if key is not None and not revoked:
                raise CommandError(f"--key: {user} has no token {key!r}")
            self.stdout.write(f"revoked {revoked} token(s) of {user}")
