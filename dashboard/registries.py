"""The registries page: every role sees which registries have a login (server and user);
admins add, change and remove them. A password is never put on a page: the form's
password field starts empty, and on an existing registry empty keeps the kept one.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import TemplateView

from dashboard.views import FleetReadMixin
from fleet.models import Actor, Registry
from fleet.services import registries

MANAGE = "fleet.change_registry"


class RegistryForm(forms.Form):
    server = forms.CharField(
        max_length=255,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    username = forms.CharField(
        label="User name", max_length=255, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    password = forms.CharField(
        label="Password or token",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )

    ca = forms.CharField(
        label="CA certificate",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "mono"}),
        help_text="Only for a registry on a private CA: its certificate (PEM). Each node's "
        "engine is made to trust it for this server before it pulls.",
    )

    def __init__(self, *args, row=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.row = row
        self.fields["password"].help_text = (
            "Kept sealed, never shown again. Leave empty to keep the one kept."
            if row is not None
            else "Kept sealed, never shown again."
        )

    def clean_server(self):
        return registries.clean_new_server(self.cleaned_data["server"], self.row)

    def clean_username(self):
        return registries.clean_secret(self.cleaned_data["username"], "user name")

    def clean_ca(self):
        return registries.clean_ca(self.cleaned_data["ca"])

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not password and self.row is not None:
            return None  # keep the kept one
        return registries.clean_secret(password, "password or token")

    def changes(self):
        data = dict(self.cleaned_data)
        if data["password"] is None:
            del data["password"]
        elif self.row is not None and data["password"] == self.row.password:
            del data["password"]  # the same again: nothing replaced
        return {k: v for k, v in data.items() if self.row is None or getattr(self.row, k) != v}


class RegistriesView(FleetReadMixin, TemplateView):
    """Every registry with a login; admins get a form to add one."""

    template_name = "dashboard/registries.html"
    permission_required = ("fleet.view_registry",)

    def get_context_data(self, **kwargs):
        manage = self.request.user.has_perm(MANAGE)
        if manage:
            kwargs.setdefault("form", RegistryForm())
        rows = list(Registry.objects.all())
        for row in rows:
            row.ca_summary = registries.ca_summary(row.ca)
        return super().get_context_data(registries=rows, can_manage=manage, **kwargs)

    def post(self, request):
        if not request.user.has_perm("fleet.add_registry"):
            return self.handle_no_permission()
        form = RegistryForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        row = registries.add(Registry(**form.changes()), Actor.of_request(request, "web"))
        messages.success(request, f"Credentials for {row.server} kept; the next pull uses them.")
        return redirect("dashboard:registries")


class RegistryEditView(LoginRequiredMixin, PermissionRequiredMixin, TemplateView):
    """Admins: change a registry's login, replace its password, or remove it."""

    template_name = "dashboard/registry.html"
    permission_required = MANAGE

    def get(self, request, pk):
        row = get_object_or_404(Registry, pk=pk)
        initial = {"server": row.server, "username": row.username, "ca": row.ca}
        form = RegistryForm(initial=initial, row=row)
        return self.render_to_response(self.get_context_data(row=row, form=form))

    def post(self, request, pk):
        row = get_object_or_404(Registry, pk=pk)
        actor = Actor.of_request(request, "web")
        if "delete" in request.POST:
            if not request.user.has_perm("fleet.delete_registry"):
                return self.handle_no_permission()
            registries.remove(row, actor)
            messages.success(request, f"Credentials for {row.server} removed.")
            return redirect("dashboard:registries")
        form = RegistryForm(request.POST, row=row)
        if not form.is_valid():
            context = self.get_context_data(row=row, form=form)
            return self.render_to_response(context, status=400)
        changes = form.changes()
        if changes:
            registries.change(row, changes, actor)
        messages.success(request, f"Credentials for {row.server} saved.")
        return redirect("dashboard:registries")
