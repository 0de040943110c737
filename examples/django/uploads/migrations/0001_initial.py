from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="ImageFile",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("upload_id", models.CharField(max_length=128, unique=True)),
                ("path", models.CharField(max_length=1024)),
                ("filename", models.CharField(max_length=255)),
                ("content_type", models.CharField(max_length=255)),
                ("version", models.CharField(max_length=32)),
                ("size", models.BigIntegerField()),
                ("owner", models.CharField(blank=True, max_length=255)),
                ("created_on", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ["-created_on"]},
        ),
    ]
