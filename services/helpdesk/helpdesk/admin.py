"""Register the helpdesk models on the admin site."""

from django.contrib import admin

from .models import Employee, ExternalEmployee, HDTSUser, ProcessedEvent, SeedMark, Ticket


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    """Show help desk employees."""

    list_display = ["company_id", "first_name", "last_name", "email", "department", "role", "status"]
    list_filter = ["department", "role", "status"]
    search_fields = ["company_id", "email", "first_name", "last_name"]
    exclude = ["password"]


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    """Show tickets."""

    list_display = ["ticket_number", "subject", "category", "status", "priority", "department"]
    list_filter = ["category", "status", "priority", "department"]
    search_fields = ["ticket_number", "subject"]
    raw_id_fields = ["employee"]


@admin.register(HDTSUser)
class HDTSUserAdmin(admin.ModelAdmin):
    """Show mirrored HDTS users."""

    list_display = ["hdts_user_id", "email", "first_name", "last_name", "role", "status", "synced_at"]
    search_fields = ["email", "first_name", "last_name"]


@admin.register(ExternalEmployee)
class ExternalEmployeeAdmin(admin.ModelAdmin):
    """Show mirrored auth employees."""

    list_display = ["external_employee_id", "email", "first_name", "last_name", "status", "synced_at"]
    search_fields = ["email", "first_name", "last_name"]


@admin.register(SeedMark)
class SeedMarkAdmin(admin.ModelAdmin):
    """Show the last seed options."""

    list_display = ["name", "options", "updated_at"]


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(admin.ModelAdmin):
    """Show processed sync events."""

    list_display = ["event_id", "queue", "action", "outcome", "processed_at"]
    list_filter = ["queue", "action", "outcome"]
