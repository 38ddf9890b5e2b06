"""Register the workflow models in the admin site."""

from django.contrib import admin

from .models import (
    DeferredEvent,
    ProcessedEvent,
    Role,
    RoleUser,
    SeedMark,
    Step,
    Transition,
    Workflow,
)


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    """List synced roles."""

    list_display = ("role_id", "name", "system", "synced_at")
    search_fields = ("name",)


@admin.register(RoleUser)
class RoleUserAdmin(admin.ModelAdmin):
    """List synced user-role links."""

    list_display = ("role", "user_id", "user_full_name", "is_active", "synced_at")
    list_filter = ("role", "is_active")
    search_fields = ("user_full_name",)


class StepInline(admin.TabularInline):
    """Edit steps inside their workflow."""

    model = Step
    extra = 0


class TransitionInline(admin.TabularInline):
    """Edit transitions inside their workflow."""

    model = Transition
    extra = 0


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    """List workflows with their steps and transitions."""

    list_display = ("name", "category", "sub_category", "department", "status")
    list_filter = ("status", "department")
    inlines = (StepInline, TransitionInline)


@admin.register(Step)
class StepAdmin(admin.ModelAdmin):
    """List steps."""

    list_display = ("workflow", "name", "role", "order", "is_start", "is_end")


@admin.register(Transition)
class TransitionAdmin(admin.ModelAdmin):
    """List transitions."""

    list_display = ("workflow", "from_step", "to_step", "name")


@admin.register(SeedMark)
class SeedMarkAdmin(admin.ModelAdmin):
    """Show the options of the last seed."""

    list_display = ("name", "options", "updated_at")


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(admin.ModelAdmin):
    """List received sync events."""

    list_display = ("event_id", "queue", "action", "outcome", "processed_at")
    list_filter = ("queue", "outcome")


@admin.register(DeferredEvent)
class DeferredEventAdmin(admin.ModelAdmin):
    """List parked out-of-order events."""

    list_display = ("event_id", "queue", "waiting_for", "occurred_at")
