app_name = "orphans"

urlpatterns = []
