"""API tokens: ``GET/POST /api/tokens/``, ``POST /api/tokens/login/``,
``DELETE /api/tokens/<token_key>/`` (services in ``operations.tokens``)."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import AuthToken
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from operations.tokens import MAX_TTL_DAYS, api_token_create, api_token_list, api_token_revoke
from quantsite.api.throttles import AnonThrottle, TokenLoginThrottle


class TokenSerializer(serializers.Serializer):
    token_key = serializers.CharField(help_text="The token's first 15 characters.")
    created = serializers.DateTimeField()
    expiry = serializers.DateTimeField(allow_null=True, help_text="null: until revoked.")


class IssuedTokenSerializer(TokenSerializer):
    token = serializers.CharField(help_text="The token itself, shown only this once.")


class TokenCreateSerializer(serializers.Serializer):
    ttl_days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_TTL_DAYS,
        help_text="Days the token lives (default: the server's QUANTSITE_API_TOKEN_TTL_DAYS).",
    )


class TokenLoginSerializer(TokenCreateSerializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


def _issued(user, data) -> Response:
    issued = api_token_create(user=user, ttl_days=data.validated_data.get("ttl_days"))
    return Response(IssuedTokenSerializer(issued).data, status=status.HTTP_201_CREATED)


class TokensApi(APIView):
    """GET: the caller's live tokens. POST: a new token for the caller, from a signed-in
    session (CSRF checked); a token cannot mint tokens, so a leaked one cannot outlive its
    revocation."""

    @extend_schema(responses=TokenSerializer(many=True), operation_id="tokens_list")
    def get(self, request):
        return Response(TokenSerializer(api_token_list(user=request.user), many=True).data)

    @extend_schema(
        request=TokenCreateSerializer,
        responses={201: IssuedTokenSerializer},
        operation_id="tokens_create",
    )
    def post(self, request):
        if isinstance(request.auth, AuthToken):
            raise exceptions.PermissionDenied(
                "a token cannot create tokens: sign in, or POST /api/tokens/login/"
            )
        data = TokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _issued(request.user, data)


class TokenLoginApi(APIView):
    """POST a username and password: a new token for that user (throttled per client)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [AnonThrottle, TokenLoginThrottle]

    @extend_schema(
        request=TokenLoginSerializer,
        responses={201: IssuedTokenSerializer},
        operation_id="tokens_login",
        auth=[],
    )
    def post(self, request):
        data = TokenLoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,  # the HttpRequest: django-axes marks a lockout on it
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None or not user.is_active:
            # 400 as DRF's obtain_auth_token: nothing here authenticates the request itself.
            raise exceptions.ValidationError({"password": ["wrong username or password"]})
        return _issued(user, data)


class TokenRevokeApi(APIView):
    """DELETE: revoke one of the caller's tokens, named by its ``token_key``."""

    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="Revoked.")},
        operation_id="tokens_revoke",
    )
    def delete(self, request, token_key: str):
        if not api_token_revoke(user=request.user, token_key=token_key):
            raise exceptions.NotFound(f"you have no token {token_key!r}")
        return Response(status=status.HTTP_204_NO_CONTENT)
