"""Alert channel configs encrypted at rest (issue 15, point 7).

The column becomes text, then every stored plaintext config is encrypted in place with
the first QUANTSITE_SECRETS_KEY key. Reversible: the reverse decrypts back to plain JSON
text, and the column becomes JSON again. Raw SQL on purpose: the historical model's field
would try to decrypt the plaintext rows it is about to encrypt.
"""

import json

from django.db import migrations

import quantsite.encryption
from quantsite.encryption import TOKEN_PREFIX, secret_decrypt, secret_encrypt


def _rewrite(apps, schema_editor, convert):
    model = apps.get_model("risk", "AlertChannel")
    qn = schema_editor.connection.ops.quote_name
    table, column = qn(model._meta.db_table), qn("config")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {column} FROM {table}")
        rows = cursor.fetchall()
        for pk, value in rows:
            new = convert(value)
            if new is not None:
                cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [new, pk])


def _encrypt(value):
    if value is None or (isinstance(value, str) and value.startswith(TOKEN_PREFIX)):
        return None  # already a token
    text = value if isinstance(value, str) else json.dumps(value)
    return secret_encrypt(json.dumps(json.loads(text)))


def _decrypt(value):
    if not (isinstance(value, str) and value.startswith(TOKEN_PREFIX)):
        return None
    return secret_decrypt(value)


def encrypt_configs(apps, schema_editor):
    _rewrite(apps, schema_editor, _encrypt)


def decrypt_configs(apps, schema_editor):
    _rewrite(apps, schema_editor, _decrypt)


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0005_violation_acknowledge"),
    ]

    operations = [
        migrations.AlterField(
            model_name="alertchannel",
            name="config",
            field=quantsite.encryption.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.RunPython(encrypt_configs, decrypt_configs),
    ]
