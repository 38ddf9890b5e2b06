"""Register every identity model in the admin site."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from .models import Employee, OutboxEvent, Role, SeedMark, System, User, UserSystemRole


@admin.register(System)
class SystemAdmin(admin.ModelAdmin):
    """Manage systems."""

    list_display = ("slug", "name")
    search_fields = ("slug", "name")


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    """Manage roles per system."""

    list_display = ("name", "system", "description")
    list_filter = ("system",)
    search_fields = ("name",)


class UserSystemRoleInline(admin.TabularInline):
    """Edit a user's role links on the user page."""

    model = UserSystemRole
    extra = 0


class UserAddForm(AdminUserCreationForm):
    """Create a user from email, username and password."""

    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("email", "username")
        field_classes: dict[str, type] = {}


class UserEditForm(UserChangeForm):
    """Edit every field of a user."""

    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"
        field_classes: dict[str, type] = {}


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """Manage users; the email is the login."""

    form = UserEditForm
    add_form = UserAddForm

    ordering = ("email",)
    list_display = ("email", "username", "first_name", "last_name", "department", "status", "is_staff")
    list_filter = ("status", "department", "is_staff", "is_active")
    search_fields = ("email", "username", "first_name", "last_name", "company_id")
    inlines = (UserSystemRoleInline,)
    fieldsets = (
        (None, {"fields": ("email", "username", "password")}),
        ("Profile", {"fields": ("first_name", "last_name", "department", "company_id", "status")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login",)}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "username", "usable_password", "password1", "password2"),
            },
        ),
    )


@admin.register(UserSystemRole)
class UserSystemRoleAdmin(admin.ModelAdmin):
    """Manage user-role links."""

    list_display = ("user", "system", "role", "is_active")
    list_filter = ("system", "role", "is_active")
    search_fields = ("user__email",)


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    """Manage HDTS employees."""

    list_display = ("company_id", "email", "first_name", "last_name", "department", "status")
    list_filter = ("status", "department")
    search_fields = ("company_id", "email", "first_name", "last_name")
    exclude = ("password",)


@admin.register(SeedMark)
class SeedMarkAdmin(admin.ModelAdmin):
    """Show the options of the last seed run."""

    list_display = ("name", "options", "updated_at")


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    """Show recorded sync events (read-only)."""

    list_display = ("seq", "queue", "action", "entity_id", "created_at", "delivered_at")
    list_filter = ("queue", "action", ("delivered_at", admin.EmptyFieldListFilter))
    readonly_fields = ("seq", "event_id", "queue", "action", "entity_id", "payload", "created_at")
