"""Create the first administrator when there is none, and say how to log in."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from console.env import env_str


class Command(BaseCommand):
    help = (
        "Create the admin user if no superuser exists "
        "(password from WARREN_ADMIN_PASSWORD, else generated and printed once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=env_str("WARREN_ADMIN_USER", "admin"))

    def handle(self, *args, username, **options):
        users = get_user_model().objects
        if users.filter(is_superuser=True).exists():
            self.stdout.write("An administrator exists already; log in with that account.")
            return
        password = env_str("WARREN_ADMIN_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        users.create_superuser(username=username, email="", password=password)
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created administrator {username!r} with password: {password}\n"
                    "It is shown only this once: note it, or set WARREN_ADMIN_PASSWORD next time."
                )
            )
        else:
            self.stdout.write(
                f"Created administrator {username!r} with the password from WARREN_ADMIN_PASSWORD."
            )
