from django.db import migrations, models

from accounts.emails import email_lookalike_key


def fill_email_keys(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    users = list(User.objects.only("pk", "email"))
    for user in users:
        user.email_key = email_lookalike_key(user.email)
    User.objects.bulk_update(users, ["email_key"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_profile_phone_notify"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="email_key",
            field=models.CharField(db_index=True, default="", editable=False, max_length=254),
        ),
        migrations.RunPython(fill_email_keys, migrations.RunPython.noop, elidable=True),
    ]
