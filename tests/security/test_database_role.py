import re

from django.conf import settings

from tests.conftest import APPLICATION_ROLE_SQL

DEPLOY = settings.BASE_DIR / "deploy" / "postgres-init.sh"


def test_the_suite_makes_its_application_role_as_compose_does():
    script = DEPLOY.read_text()
    statements = script[script.index("<<SQL") + len("<<SQL") : script.rindex("SQL")].split(";")
    deployed = [
        " ".join(statement.split())
        .replace(" PASSWORD '${APP_DB_PASSWORD}'", "")
        .replace('"$POSTGRES_DB"', "{database}")
        .replace('"$POSTGRES_USER"', "{owner}")
        for statement in statements
        if statement.strip()
    ]
    assert [re.sub(r"\brollback_app\b", "{role}", statement) for statement in deployed] == list(APPLICATION_ROLE_SQL)
