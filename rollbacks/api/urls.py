from rest_framework.routers import SimpleRouter

from rollbacks.api.views import RollbackViewSet

router = SimpleRouter()
router.register("rollbacks", RollbackViewSet, basename="rollback")

urlpatterns = [*router.urls]
