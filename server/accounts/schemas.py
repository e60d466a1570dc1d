"""Request and response schemas of sign-in and the profile."""

from __future__ import annotations

import marshmallow as ma

from server.api import Schema, Text


class SmsCodeRequestSchema(Schema):
    phone = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=32),
        metadata={"description": "手机号：13812345678、+86 138 1234 5678 或 008613812345678"},
    )


class SmsCodeSentSchema(Schema):
    expires_in = ma.fields.Integer(required=True, metadata={"description": "验证码有效期（秒）"})
    resend_after = ma.fields.Integer(
        required=True, metadata={"description": "可再次获取验证码的最短间隔（秒）"}
    )


class TokenRequestSchema(Schema):
    phone = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=32))
    code = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"^\d{6}$", error="验证码应为 6 位数字。"),
        metadata={"description": "短信验证码（6 位数字）"},
    )


class StaffTokenRequestSchema(Schema):
    username = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    password = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(min=1, max=256)
    )


class RefreshRequestSchema(Schema):
    refresh_token = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(min=1, max=200)
    )


class LogoutRequestSchema(Schema):
    refresh_token = ma.fields.String(load_only=True, validate=ma.validate.Length(min=1, max=200))


class TokenSchema(Schema):
    access_token = ma.fields.String(required=True)
    refresh_token = ma.fields.String(
        required=True, metadata={"description": "每次使用后轮换；旧令牌再次使用将注销整个会话"}
    )
    token_type = ma.fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = ma.fields.Integer(required=True, metadata={"description": "访问令牌有效期（秒）"})


_CODE = ma.validate.Regexp(r"^\d{9}$", error="应为 9 位乡镇（街道）区划代码。")


class MeSchema(Schema):
    """The caller's profile. ID numbers only ever appear masked."""

    id = ma.fields.Integer(required=True)
    role = ma.fields.String(required=True)
    role_label = ma.fields.String(required=True)
    phone = ma.fields.String(allow_none=True, metadata={"description": "E.164"})
    username = ma.fields.String(allow_none=True)
    name = ma.fields.String(allow_none=True)
    id_number_masked = ma.fields.String(allow_none=True, metadata={"example": "371102********123X"})
    residence_township_code = ma.fields.String(allow_none=True)
    residence_township_name = ma.fields.String(allow_none=True)
    hukou_township_code = ma.fields.String(allow_none=True)
    hukou_township_name = ma.fields.String(allow_none=True)
    region_code = ma.fields.String(allow_none=True, metadata={"description": "工作人员辖区"})
    region_name = ma.fields.String(allow_none=True)


class MeUpdateSchema(Schema):
    """Fields a resident may change; ``null`` clears one."""

    name = Text(max_length=50, allow_none=True)
    id_number = ma.fields.String(
        allow_none=True,
        load_only=True,
        validate=ma.validate.Length(max=40),
        metadata={"description": "身份证号（18 位），加密保存，仅以掩码形式返回"},
    )
    residence_township_code = ma.fields.String(allow_none=True, validate=_CODE)
    hukou_township_code = ma.fields.String(allow_none=True, validate=_CODE)
