from django.urls import include, path
from rest_framework.routers import DefaultRouter

from portfolio.api import orders, views

router = DefaultRouter()
router.register("portfolios", views.PortfolioViewSet)
router.register("strategies", views.StrategyViewSet)
router.register("trades", views.TradeViewSet)
router.register("positions", views.PositionViewSet)
router.register("rebalances", views.RebalanceEventViewSet)
router.register("orders", orders.PendingOrderViewSet)
router.register("audit", views.ConfigChangeViewSet)

app_name = "api"
urlpatterns = [
    path(
        "portfolios/<int:pk>/rebalance/",
        views.PortfolioRebalanceApi.as_view(),
        name="portfolio-rebalance",
    ),
    path("", include(router.urls)),
]
