"""The filters for events and deployments: one definition for the API, the pages and the admin."""

import datetime

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from fleet.models import Deployment, Event, EventKind


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, turned to UTC: Python takes offsets up to 23:59, PostgreSQL up to
    15:59, and a time it refuses would fail the query instead of the request."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None or value.tzinfo is None:
            return value
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError("Enter a time within the years 1 to 9999.") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class EventFilter(django_filters.FilterSet):
    """Events by which node or service, what, who, and when (UTC); every field optional."""

    node = django_filters.CharFilter(field_name="node_name")
    service = django_filters.CharFilter(field_name="service_name")
    kind = django_filters.ChoiceFilter(choices=EventKind.choices)
    actor = django_filters.CharFilter()
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields = ["node", "service", "kind", "actor", "since", "until"]


class DeploymentFilter(django_filters.FilterSet):
    """Deployments by service name and status."""

    service = django_filters.CharFilter(field_name="service__name")
    status = django_filters.ChoiceFilter(choices=Deployment.Status.choices)

    class Meta:
        model = Deployment
        fields = ["service", "status"]
