from django.contrib import admin

from .models import Micropost


@admin.register(Micropost)
class MicropostAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "text", "referenced", "created", "updated")
    list_display_links = ("id", "text")
    list_select_related = ("user", "referenced")
    list_filter = ("created",)
    search_fields = ("text", "user__username", "referenced__username")
    date_hierarchy = "created"
    autocomplete_fields = ("user", "referenced")
    readonly_fields = ("created", "updated")
