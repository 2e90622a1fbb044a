"""clip media: uploaded videos, probed facts, resumable uploads

Revision ID: ce5acaad780d
Revises: c5d8f1e2a4b6
Create Date: 2026-12-01 10:46:14.733614

"""
from alembic import op
import sqlalchemy as sa

import dashboard.models


# revision identifiers, used by Alembic.
revision = 'ce5acaad780d'
down_revision = 'c5d8f1e2a4b6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('media_uploads',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('length', sa.BigInteger(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('clip_fields', sa.JSON(), nullable=False),
    sa.Column('clip_id', sa.Uuid(), nullable=True),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('finished_at', dashboard.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', dashboard.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', dashboard.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clip_id'], ['clips.id'], name=op.f('fk_media_uploads_clip_id_clips')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_media_uploads_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_uploads'))
    )
    with op.batch_alter_table('media_uploads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_uploads_clip_id'), ['clip_id'], unique=False)
        batch_op.create_index('ix_media_uploads_finished_updated', ['finished_at', 'updated_at'], unique=False)

    with op.batch_alter_table('clips', schema=None) as batch_op:
        batch_op.add_column(sa.Column('media_key', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('thumbnail_key', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('media_content_type', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('media_size_bytes', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('media_container', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('video_codec', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('width', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('height', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('frame_rate', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('bit_rate', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('video_bit_rate', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('rotation', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('audio_codec', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('audio_channels', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('audio_sample_rate', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cover_offset_ms', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('media_uploaded_at', dashboard.models.UTCDateTime(timezone=True), nullable=True))



def downgrade():
    with op.batch_alter_table('clips', schema=None) as batch_op:
        batch_op.drop_column('media_uploaded_at')
        batch_op.drop_column('cover_offset_ms')
        batch_op.drop_column('audio_sample_rate')
        batch_op.drop_column('audio_channels')
        batch_op.drop_column('audio_codec')
        batch_op.drop_column('rotation')
        batch_op.drop_column('video_bit_rate')
        batch_op.drop_column('bit_rate')
        batch_op.drop_column('frame_rate')
        batch_op.drop_column('height')
        batch_op.drop_column('width')
        batch_op.drop_column('video_codec')
        batch_op.drop_column('media_container')
        batch_op.drop_column('media_size_bytes')
        batch_op.drop_column('media_content_type')
        batch_op.drop_column('thumbnail_key')
        batch_op.drop_column('media_key')

    with op.batch_alter_table('media_uploads', schema=None) as batch_op:
        batch_op.drop_index('ix_media_uploads_finished_updated')
        batch_op.drop_index(batch_op.f('ix_media_uploads_clip_id'))

    op.drop_table('media_uploads')
