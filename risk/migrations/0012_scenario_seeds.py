"""The bundled crises as stress windows and two hypothetical shocks (issue 13): data, so
an operator edits or disables them on the /scenarios/ page or in the admin."""

from datetime import date

from django.db import migrations

WINDOWS = [
    ("Dot-com bust", date(2000, 3, 1), date(2002, 10, 31), "Nasdaq peak to the 2002 low"),
    ("Global financial crisis", date(2007, 10, 1), date(2009, 3, 31), "S&P 500 peak to trough"),
    ("2011 US downgrade", date(2011, 7, 1), date(2011, 10, 31), "Euro debt crisis, S&P downgrade"),
    ("COVID crash", date(2020, 2, 19), date(2020, 3, 23), "Fastest 30 % fall on record"),
    ("2022 rate shock", date(2022, 1, 1), date(2022, 10, 31), "Inflation and rate hikes"),
]
SHOCKS = [
    ("Tech -20%, rest -5%", -0.05, {"Information Technology": -0.20}, {}),
    ("Market -10%", -0.10, {}, {}),
]


def seed(apps, schema_editor):
    StressWindow = apps.get_model("risk", "StressWindow")
    ShockScenario = apps.get_model("risk", "ShockScenario")
    for name, start, end, description in WINDOWS:
        StressWindow.objects.get_or_create(
            name=name, defaults={"start": start, "end": end, "description": description}
        )
    for name, market, sectors, tickers in SHOCKS:
        ShockScenario.objects.get_or_create(
            name=name, defaults={"market": market, "sectors": sectors, "tickers": tickers}
        )


def unseed(apps, schema_editor):
    apps.get_model("risk", "StressWindow").objects.filter(name__in=[w[0] for w in WINDOWS]).delete()
    apps.get_model("risk", "ShockScenario").objects.filter(name__in=[s[0] for s in SHOCKS]).delete()


class Migration(migrations.Migration):
    dependencies = [("risk", "0011_scenarios")]
    operations = [migrations.RunPython(seed, unseed)]
