"""What every admin page shares: Fleet's name on the site, and the read-only admin for records
Fleet writes itself."""

from django.contrib import admin
from django.urls import reverse_lazy

# Fleet's admin, not Django's: its name on every page, and "View site" leads to the dashboard.
admin.site.site_header = "Fleet admin"
admin.site.site_title = "Fleet admin"
admin.site.index_title = "Nodes, services, events and users"
admin.site.site_url = reverse_lazy("dashboard:overview")


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records written only by Fleet itself: shown, never added, changed or deleted."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
