"""Registry credentials in the admin: admins keep them; a password is only ever replaced."""

from django import forms
from django.contrib import admin

from fleet.models import Actor, Registry
from fleet.services import registries


class RegistryForm(forms.ModelForm):
    """The password field starts empty and is never filled in: empty keeps the kept one."""

    password = forms.CharField(
        label="Password or token",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )

    class Meta:
        model = Registry
        fields = ["server", "username", "password", "ca"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["password"] = ""
        self.fields["password"].help_text = (
            "Kept sealed and never shown again. Leave empty to keep the one kept."
            if self.instance.pk
            else "Kept sealed and never shown again."
        )

    def clean_server(self):
        row = self.instance if self.instance.pk else None
        return registries.clean_new_server(self.cleaned_data["server"], row)

    def clean_username(self):
        return registries.clean_secret(self.cleaned_data["username"], "user name")

    def clean_ca(self):
        return registries.clean_ca(self.cleaned_data["ca"])

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not password and self.instance.pk:
            return Registry.objects.get(pk=self.instance.pk).password
        return registries.clean_secret(password, "password or token")


@admin.register(Registry)
class RegistryAdmin(admin.ModelAdmin):
    form = RegistryForm
    list_display = ["server", "username", "updated_at"]
    search_fields = ["server", "username"]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # Read-only, the admin would print every field's value: never the password.
        readable = ["server", "username", "ca"]
        return fields if self.has_change_permission(request, obj) else readable

    def save_model(self, request, obj, form, change):
        actor = Actor.of_request(request, "admin")
        if not change:
            registries.add(obj, actor)
            return
        kept = Registry.objects.get(pk=obj.pk)
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        registries.change(kept, changes, actor)

    def delete_model(self, request, obj):
        registries.remove(obj, Actor.of_request(request, "admin"))

    def delete_queryset(self, request, queryset):
        for row in queryset:
            registries.remove(row, Actor.of_request(request, "admin"))
