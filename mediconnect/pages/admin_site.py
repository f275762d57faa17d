"""The staff's admin site: open to every user the project calls an admin (`User.is_admin`)."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class ClinicAdminSite(admin.AdminSite):
    def has_permission(self, request):
        # Django's own asks for is_staff; the portals and the API go by User.is_admin (role ADMIN,
        # staff or superuser), so one notion of "admin" opens the same doors everywhere.
        return request.user.is_active and request.user.is_authenticated and request.user.is_admin


class ClinicAdminConfig(AdminConfig):
    default_site = "mediconnect.pages.admin_site.ClinicAdminSite"
