"""Email is configured by EMAIL_URL (console by default) and sent from DEFAULT_FROM_EMAIL."""

from mediconnect.tests.test_settings import settings_under

NAMES = ["EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_USE_TLS", "DEFAULT_FROM_EMAIL"]


def test_email_goes_to_the_log_unless_a_server_is_configured():
    default = settings_under({"SECRET_KEY": "k"}, NAMES)
    assert default["EMAIL_BACKEND"] == "core.mail.LogEmailBackend"  # recipients and subjects, no bodies
    assert default["DEFAULT_FROM_EMAIL"] == "MediConnect <no-reply@localhost>"

    smtp = settings_under(
        {
            "SECRET_KEY": "k",
            "EMAIL_URL": "smtp+tls://mailer:s3cret@smtp.clinic.example:587",
            "DEFAULT_FROM_EMAIL": "Clinic <care@clinic.example>",
        },
        NAMES,
    )
    assert smtp == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.clinic.example",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "mailer",
        "EMAIL_USE_TLS": True,
        "DEFAULT_FROM_EMAIL": "Clinic <care@clinic.example>",
    }
