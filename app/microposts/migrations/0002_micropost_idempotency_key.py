# Written like Django 5.2's makemigrations output, with tuples (as 0001_initial).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = (("microposts", "0001_initial"),)

    operations = (
        migrations.AddField(
            model_name="micropost",
            name="idempotency_key",
            field=models.CharField(blank=True, editable=False, max_length=255, null=True),
        ),
        migrations.AddConstraint(
            model_name="micropost",
            constraint=models.UniqueConstraint(
                fields=("user", "idempotency_key"), name="micropost_user_idempotency_key"
            ),
        ),
    )
